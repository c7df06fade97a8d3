using System.Diagnostics;
using System.Diagnostics.Metrics;

namespace Procyon.Runtime;

/// <summary>
/// The server's instruments and its activity source, both named <c>Procyon</c>: OpenTelemetry
/// (see the README's "Observability") exports them as <c>/metrics</c> and, with an OTLP
/// endpoint, as traces. Recording costs a few hundred nanoseconds per call when something listens.
/// </summary>
public static class ProcyonTelemetry
{
    public const string Name = "Procyon";

    public static readonly ActivitySource Source = new(Name);

    private static readonly Meter Meter = new(Name);

    private static readonly Counter<long> Calls = Meter.CreateCounter<long>("procyon.calls", "{call}", "Calls that ended, by database, function, origin and status");

    private static readonly Histogram<double> CallDuration = Meter.CreateHistogram<double>("procyon.call.duration", "s", "How long calls took, from arrival to result (sleeps included)",
        advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60] });

    private static readonly UpDownCounter<long> InFlight = Meter.CreateUpDownCounter<long>("procyon.calls.in_flight", "{call}", "Calls admitted and not yet ended, sleeping ones included");

    private static readonly Histogram<double> Lateness = Meter.CreateHistogram<double>("procyon.scheduler.lateness", "s", "How long after its due time a scheduled row started running",
        advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 60] });

    /// <summary>
    /// A call that ended (or was refused): counted, its duration recorded, its activity given its
    /// status. Called once per call where it ends, not for a kept result handed to a retry.
    /// </summary>
    internal static CallResult Ended(CallResult result)
    {
        var status = new KeyValuePair<string, object?>("status", result.Status);
        var origin = new KeyValuePair<string, object?>("origin", result.Origin);
        var db = new KeyValuePair<string, object?>("db", result.Db);
        Calls.Add(1, db, new KeyValuePair<string, object?>("fn", result.Fn), origin, status);
        CallDuration.Record(result.DurationMicros / 1e6, db, origin, status);
        if (Activity.Current is { } activity && activity.Source == Source)
        {
            activity.SetTag("procyon.status", result.Status);
            activity.SetStatus(result.Status == "ok" ? ActivityStatusCode.Ok : ActivityStatusCode.Error, result.Error);
        }
        return result;
    }

    /// <summary>The span of one call (a child of the HTTP request's, which honours a caller's <c>traceparent</c>); null when nobody listens.</summary>
    internal static Activity? StartCall(CallRequest request)
    {
        var activity = Source.StartActivity($"call {request.Database}.{request.Function}");
        if (activity is not null)
        {
            activity.SetTag("procyon.db", request.Database);
            activity.SetTag("procyon.fn", request.Function);
            activity.SetTag("procyon.origin", request.Origin);
            activity.SetTag("procyon.caller", request.Caller.ToString());
            activity.SetTag("procyon.call_id", request.CallId.ToString());
            if (request.ScheduleId is { } scheduleId)
            {
                activity.SetTag("procyon.schedule_id", scheduleId);
            }
        }
        return activity;
    }

    internal static void Admitted(string origin) => InFlight.Add(1, new KeyValuePair<string, object?>("origin", origin));

    internal static void Left(string origin) => InFlight.Add(-1, new KeyValuePair<string, object?>("origin", origin));

    /// <summary>A scheduled row started running <paramref name="late"/> after its due time.</summary>
    internal static void RowStarted(string database, TimeSpan late) =>
        Lateness.Record(Math.Max(0, late.TotalSeconds), new KeyValuePair<string, object?>("db", database));
}
