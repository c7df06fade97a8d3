using System.Diagnostics.Metrics;

namespace Procyon.Storage;

/// <summary>
/// The instruments of what Storage does itself (the SQL endpoint's queries), on a meter named
/// <c>Procyon</c> like the runtime's, so OpenTelemetry exports both as one.
/// </summary>
public static class StorageTelemetry
{
    public const string Name = "Procyon";

    private static readonly Meter Meter = new(Name);

    private static readonly Counter<long> Queries = Meter.CreateCounter<long>("procyon.sql.queries", "{query}",
        "SQL endpoint queries, by database and status: ok, rejected, forbidden, too_large, timeout, overloaded, cancelled or error");

    private static readonly Counter<long> Rows = Meter.CreateCounter<long>("procyon.sql.rows", "{row}", "Rows the SQL endpoint answered, by database");

    private static readonly Counter<long> Bytes = Meter.CreateCounter<long>("procyon.sql.answers", "By", "Bytes of JSON the SQL endpoint answered, by database");

    /// <summary>A query of <paramref name="database"/> ended with <paramref name="status"/>; an answer's rows and bytes are counted.</summary>
    internal static void Queried(string database, string status, int rows = 0, long bytes = 0)
    {
        var db = new KeyValuePair<string, object?>("db", database);
        Queries.Add(1, db, new KeyValuePair<string, object?>("status", status));
        if (status == "ok")
        {
            Rows.Add(rows, db);
            Bytes.Add(bytes, db);
        }
    }
}
