using System.Net;
using System.Net.Sockets;
using Npgsql;

namespace Procyon.Testing;

/// <summary>
/// A TCP relay in front of the local Postgres that a test can cut and restore: to a server that
/// connects through it, Postgres went away (every connection dropped, new ones refused) and came
/// back, while every other test goes on using Postgres directly.
/// </summary>
public sealed class PostgresProxy : IAsyncDisposable
{
    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    private readonly DnsEndPoint _postgres;
    private readonly List<TcpClient> _open = [];
    private readonly Task _accepting;
    private volatile bool _cut;

    private PostgresProxy(DnsEndPoint postgres)
    {
        _postgres = postgres;
        _listener.Start();
        _accepting = AcceptAsync();
    }

    /// <summary>Relays to the host and port of <paramref name="database"/>'s connection string.</summary>
    public static PostgresProxy Start(TestDatabase database)
    {
        var target = new NpgsqlConnectionStringBuilder(database.ConnectionString);
        return new PostgresProxy(new DnsEndPoint(target.Host!, target.Port));
    }

    /// <summary><paramref name="database"/>'s connection string, through this relay.</summary>
    public string ConnectionStringFor(TestDatabase database) =>
        new NpgsqlConnectionStringBuilder(database.ConnectionString) { Host = "127.0.0.1", Port = ((IPEndPoint)_listener.LocalEndpoint).Port }.ConnectionString;

    /// <summary>Drops every relayed connection and refuses new ones until <see cref="Restore"/>.</summary>
    public void Cut()
    {
        _cut = true;
        lock (_open)
        {
            foreach (var socket in _open)
            {
                socket.Dispose();
            }
            _open.Clear();
        }
    }

    public void Restore() => _cut = false;

    public async ValueTask DisposeAsync()
    {
        Cut();
        _listener.Stop();
        await _accepting.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
    }

    private async Task AcceptAsync()
    {
        while (true)
        {
            var client = await _listener.AcceptTcpClientAsync();
            if (_cut)
            {
                client.Dispose();
                continue;
            }
            _ = RelayAsync(client);
        }
    }

    private async Task RelayAsync(TcpClient client)
    {
        using var upstream = new TcpClient();
        using (client)
        {
            try
            {
                await upstream.ConnectAsync(_postgres.Host, _postgres.Port);
                lock (_open)
                {
                    _open.Add(client);
                    _open.Add(upstream);
                }
                // Either direction ending (or a cut disposing the sockets) ends both.
                await Task.WhenAny(client.GetStream().CopyToAsync(upstream.GetStream()), upstream.GetStream().CopyToAsync(client.GetStream()));
            }
            catch (Exception e) when (e is IOException or SocketException or ObjectDisposedException)
            {
                // The connection was cut or Postgres closed it: either way it is over.
            }
        }
    }
}
