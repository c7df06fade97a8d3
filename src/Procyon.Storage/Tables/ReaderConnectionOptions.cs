using System.ComponentModel.DataAnnotations;

namespace Procyon.Storage.Tables;

/// <summary>
/// The SQL endpoint's Postgres sessions, bound from the <c>Procyon:Api</c> section with the
/// endpoint's other settings.
/// </summary>
public sealed class ReaderConnectionOptions
{
    public const string Section = "Procyon:Api";

    /// <summary>
    /// Queries at once per database and kind of reader (owner, public): each pair has a pool of
    /// its own, so anonymous readers cannot take the owner's sessions. At most the reader roles'
    /// <c>CONNECTION LIMIT</c> (16), which covers every replica.
    /// </summary>
    [Range(1, 16)]
    public int SqlConnectionsPerDatabase { get; set; } = 4;

    /// <summary>Reader sessions this server holds open in Postgres at once, idle ones included.</summary>
    [Range(1, 10_000)]
    public int SqlMaxConnections { get; set; } = 32;

    /// <summary>How long an unused reader session stays open for the next query.</summary>
    [Range(typeof(TimeSpan), "00:00:01", "01:00:00")]
    public TimeSpan SqlIdleLifetime { get; set; } = TimeSpan.FromMinutes(1);
}
