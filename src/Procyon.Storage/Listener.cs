using Npgsql;

namespace Procyon.Storage;

/// <summary>Opens connections that LISTEN on a channel of the server's.</summary>
internal static class Listener
{
    /// <summary>A connection listening on <paramref name="channel"/>; wait on it with <c>WaitAsync</c>.</summary>
    public static async Task<NpgsqlConnection> OpenAsync(NpgsqlDataSource dataSource, string channel, NotificationEventHandler onNotification, CancellationToken cancellationToken)
    {
        var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        connection.Notification += onNotification;
        await using var command = new NpgsqlCommand($"LISTEN {channel}", connection);
        await command.ExecuteNonQueryAsync(cancellationToken);
        return connection;
    }
}
