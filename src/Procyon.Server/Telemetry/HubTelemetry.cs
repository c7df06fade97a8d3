using System.Diagnostics.Metrics;
using Procyon.Runtime;

namespace Procyon.Server.Telemetry;

/// <summary>The hub's instruments, on a meter named <c>Procyon</c> like the runtime's, so OpenTelemetry exports both as one.</summary>
internal static class HubTelemetry
{
    /// <summary>Why results were dropped (the <c>reason</c> of <c>procyon.hub.results.dropped</c>).</summary>
    public static class DropReason
    {
        /// <summary>The server's queue of results to fan out was full.</summary>
        public const string Queue = "queue";

        /// <summary>A connection fell too far behind and was aborted with what waited for it.</summary>
        public const string Connection = "connection";

        /// <summary>A <c>Results</c> stream's reader fell behind and lost its oldest results.</summary>
        public const string Stream = "stream";
    }

    private static readonly Meter Meter = new(ProcyonTelemetry.Name);

    private static readonly UpDownCounter<long> Connections = Meter.CreateUpDownCounter<long>("procyon.hub.connections", "{connection}", "Hub connections open on this server");

    private static readonly UpDownCounter<long> Subscriptions = Meter.CreateUpDownCounter<long>("procyon.hub.subscriptions", "{subscription}",
        "Listeners of a database's results on this server (a connection's subscriptions to it, or a Results stream), by database");

    private static readonly Counter<long> Sent = Meter.CreateCounter<long>("procyon.hub.results.sent", "{result}", "Results written to hub connections and streams, by database");

    private static readonly Counter<long> Dropped = Meter.CreateCounter<long>("procyon.hub.results.dropped", "{result}",
        "Results that did not reach a listener, by database and reason: queue, connection or stream");

    public static void Connected(int delta) => Connections.Add(delta);

    /// <summary>A listener of <paramref name="database"/> came (+1) or went (-1).</summary>
    public static void Listening(string database, int delta) => Subscriptions.Add(delta, new KeyValuePair<string, object?>("db", database));

    public static void ResultSent(CallResult result) => Sent.Add(1, new KeyValuePair<string, object?>("db", result.Db));

    /// <summary>A result did not reach a listener, for <paramref name="reason"/> (a <see cref="DropReason"/>).</summary>
    public static void ResultDropped(CallResult result, string reason) =>
        Dropped.Add(1, new KeyValuePair<string, object?>("db", result.Db), new KeyValuePair<string, object?>("reason", reason));
}
