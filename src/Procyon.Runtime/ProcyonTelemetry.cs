using System.Collections.Concurrent;
using System.Diagnostics;
using System.Diagnostics.Metrics;
using Procyon.Runtime.Scheduling;
using Procyon.Storage;

namespace Procyon.Runtime;

/// <summary>
/// The server's instruments and its activity source, both named <c>Procyon</c>: OpenTelemetry
/// (see the README's "Observability") exports them as <c>/metrics</c> and, with an OTLP
/// endpoint, as traces. Recording costs a few hundred nanoseconds per call when something listens;
/// what a call records when nothing listens allocates nothing.
/// </summary>
public static class ProcyonTelemetry
{
    public const string Name = StorageTelemetry.Name;

    /// <summary>The histogram of call durations (s), tagged db, origin and status; the console's charts listen to it too.</summary>
    public const string CallDurationName = "procyon.call.duration";

    /// <summary>The histogram of how late scheduled rows started (s), tagged db; the console's charts listen to it too.</summary>
    public const string LatenessName = "procyon.scheduler.lateness";

    public static readonly ActivitySource Source = new(Name);

    /// <summary>Why a call was shed with 503 (the <c>reason</c> of <c>procyon.calls.shed</c>).</summary>
    internal static class ShedReason
    {
        /// <summary>The instances' memory budget (Procyon:Runtime:MaxTotalMemoryBytes).</summary>
        public const string Memory = "memory";

        /// <summary>The database's calls in flight (Procyon:Runtime:MaxCallsPerDatabase).</summary>
        public const string Database = "database";

        /// <summary>The server's call slots and their queue (Procyon:Runtime:MaxConcurrentCalls, MaxQueuedCalls).</summary>
        public const string Queue = "queue";

        /// <summary>A turn to run wasm (Procyon:Runtime:MaxTurnWait).</summary>
        public const string Turn = "turn";

        /// <summary>The transaction slots (Procyon:Runtime:MaxConcurrentTransactions, TransactionSlotWait).</summary>
        public const string Transactions = "transactions";
    }

    private static readonly Meter Meter = new(Name);

    private static readonly KeyValuePair<string, object?> LiveState = new("state", "live");
    private static readonly KeyValuePair<string, object?> IdleState = new("state", "idle");
    private static readonly KeyValuePair<string, object?> InMemory = new("state", "memory");
    private static readonly KeyValuePair<string, object?> Durable = new("state", "durable");
    private static readonly KeyValuePair<string, object?> SlotQueue = new("queue", "slot");
    private static readonly KeyValuePair<string, object?> TurnQueue = new("queue", "turn");

    /// <summary>The memory budgets and lease keepers of this process's servers, read at each scrape.</summary>
    private static readonly ConcurrentDictionary<InstanceMemory, byte> Memories = new();
    private static readonly ConcurrentDictionary<LeaseKeeper, byte> LeaseKeepers = new();

    private static readonly Counter<long> Calls = Meter.CreateCounter<long>("procyon.calls", "{call}", "Calls that ended, by database, function, origin and status");

    private static readonly Histogram<double> CallDuration = Meter.CreateHistogram<double>(CallDurationName, "s", "How long calls took, from arrival to result (sleeps included)",
        advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60] });

    private static readonly UpDownCounter<long> InFlight = Meter.CreateUpDownCounter<long>("procyon.calls.in_flight", "{call}", "Calls admitted and not yet ended, sleeping ones included");

    private static readonly UpDownCounter<long> SleepingCalls = Meter.CreateUpDownCounter<long>("procyon.calls.sleeping", "{call}",
        "Procedure calls asleep here, by database and state: memory (an instance waits) or durable (its snapshot is in Postgres)");

    private static readonly UpDownCounter<long> QueuedCalls = Meter.CreateUpDownCounter<long>("procyon.calls.queued", "{call}",
        "Calls waiting, by queue: slot (one of the server's call slots) or turn (a turn to run their database's wasm)");

    private static readonly Counter<long> Shed = Meter.CreateCounter<long>("procyon.calls.shed", "{call}", "Calls refused (or stopped) with 503 because a limit was reached, by database and reason");

    private static readonly Histogram<double> PublishDuration = Meter.CreateHistogram<double>("procyon.publish.duration", "s", "How long publishes took, from the upload read to the commit, by status",
        advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120] });

    private static readonly Counter<long> CompiledLookups = Meter.CreateCounter<long>("procyon.compiled_cache.lookups", "{module}",
        "Compiled code looked up, by result: loaded (already in this process), hit (from the cache on disk) or miss (compiled)");

    private static readonly UpDownCounter<long> OpenTransactions = Meter.CreateUpDownCounter<long>("procyon.transactions.open", "{transaction}", "Transactions of calls and scheduled runs holding a slot, by database");

    private static readonly Counter<long> Retries = Meter.CreateCounter<long>("procyon.transactions.retries", "{retry}", "Transactions run again because Postgres could not serialize them, by database");

    private static readonly Counter<long> GiveUps = Meter.CreateCounter<long>("procyon.transactions.give_ups", "{call}", "Calls that failed for contention (503) once retries could not help, by database");

    private static readonly Histogram<double> Lateness = Meter.CreateHistogram<double>(LatenessName, "s", "How long after its due time a scheduled row started running",
        advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 60] });

    private static readonly Counter<long> TakeOvers = Meter.CreateCounter<long>("procyon.takeovers", "{call}",
        "Sleeping calls taken over once their server's lease ended, by database and kind: call (a durable call) or scheduled (a scheduled run's)");

    static ProcyonTelemetry()
    {
        Meter.CreateObservableUpDownCounter("procyon.instances", () => ByState(m => m.LiveInstances, m => m.IdleInstances), "{instance}",
            "Module instances, by state: live (running or sleeping calls) or idle (pooled for reuse)");
        Meter.CreateObservableUpDownCounter("procyon.instances.memory", () => ByState(m => m.LiveBytes, m => m.IdleBytes), "By",
            "Linear memory of module instances against the memory budget, by state: live or idle");
        Meter.CreateObservableUpDownCounter("procyon.scheduler.leased", LeasedRows, "{row}",
            "Scheduled rows this server leased and has not finished or let go (due, running or about to), by database");
    }

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
        if (result.Failure == CallFailure.Contention)
        {
            GiveUps.Add(1, db);
        }
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

    /// <summary>The span of a module's table call (<paramref name="import"/>, such as <c>table_insert</c>), under its call's; null when nobody listens.</summary>
    internal static Activity? StartTableCall(string import, string database, string table)
    {
        var activity = Source.StartActivity(import);
        activity?.SetTag("procyon.db", database).SetTag("procyon.table", table);
        return activity;
    }

    /// <summary>The span of a call's commit, under its call's; null when nobody listens.</summary>
    internal static Activity? StartCommit(string database) => Source.StartActivity("commit")?.SetTag("procyon.db", database);

    internal static void Admitted(string origin) => InFlight.Add(1, new KeyValuePair<string, object?>("origin", origin));

    internal static void Left(string origin) => InFlight.Add(-1, new KeyValuePair<string, object?>("origin", origin));

    /// <summary>A procedure call of <paramref name="database"/> asleep until the scope is disposed.</summary>
    internal static Held Sleeping(string database, bool durable) =>
        Hold(SleepingCalls, new TagList { new("db", database), durable ? Durable : InMemory });

    /// <summary>A call waiting for one of the server's call slots until the scope is disposed.</summary>
    internal static Held QueuedForSlot() => Hold(QueuedCalls, new TagList { SlotQueue });

    /// <summary>A call waiting for a turn to run its database's wasm until the scope is disposed.</summary>
    internal static Held QueuedForTurn() => Hold(QueuedCalls, new TagList { TurnQueue });

    /// <summary>A call of <paramref name="database"/> refused (or stopped) with 503 for <paramref name="reason"/> (a <see cref="ShedReason"/>).</summary>
    internal static void Refused(string database, string reason) =>
        Shed.Add(1, new KeyValuePair<string, object?>("db", database), new KeyValuePair<string, object?>("reason", reason));

    /// <summary>A publish ended, committed or not, after <paramref name="took"/>.</summary>
    internal static void Published(TimeSpan took, bool committed) =>
        PublishDuration.Record(took.TotalSeconds, new KeyValuePair<string, object?>("status", committed ? "ok" : "error"));

    /// <summary>Compiled code was found already loaded, on disk, or not at all (<paramref name="result"/>: loaded, hit or miss).</summary>
    internal static void CompiledLookup(string result) => CompiledLookups.Add(1, new KeyValuePair<string, object?>("result", result));

    /// <summary>A transaction of <paramref name="database"/> took its slots (+1) or gave them back (-1).</summary>
    internal static void TransactionsOpen(string database, int delta) => OpenTransactions.Add(delta, new KeyValuePair<string, object?>("db", database));

    /// <summary>A transaction of <paramref name="database"/> that Postgres could not serialize runs again.</summary>
    internal static void Retried(string database) => Retries.Add(1, new KeyValuePair<string, object?>("db", database));

    /// <summary>A scheduled row started running <paramref name="late"/> after its due time.</summary>
    internal static void RowStarted(string database, TimeSpan late) =>
        Lateness.Record(Math.Max(0, late.TotalSeconds), new KeyValuePair<string, object?>("db", database));

    /// <summary>A sleeping call of <paramref name="database"/> was taken over here: a durable call, or a scheduled run's (<paramref name="scheduled"/>).</summary>
    internal static void TakenOver(string database, bool scheduled) =>
        TakeOvers.Add(1, new KeyValuePair<string, object?>("db", database), new KeyValuePair<string, object?>("kind", scheduled ? "scheduled" : "call"));

    /// <summary>Reads <paramref name="memory"/>'s instances at each scrape until disposed (with its server).</summary>
    internal static IDisposable Observe(InstanceMemory memory) => Observe(Memories, memory);

    /// <summary>Reads the rows <paramref name="leases"/> holds at each scrape until disposed (when its scheduler stops).</summary>
    internal static IDisposable Observe(LeaseKeeper leases) => Observe(LeaseKeepers, leases);

    private static Held Hold(UpDownCounter<long> counter, TagList tags)
    {
        counter.Add(1, in tags);
        return new Held(counter, tags);
    }

    private static Observed<T> Observe<T>(ConcurrentDictionary<T, byte> observed, T item)
        where T : notnull
    {
        observed[item] = 0;
        return new Observed<T>(observed, item);
    }

    private static Measurement<long>[] ByState(Func<InstanceMemory, long> live, Func<InstanceMemory, long> idle) =>
    [
        new(Memories.Keys.Sum(live), LiveState),
        new(Memories.Keys.Sum(idle), IdleState),
    ];

    private static IEnumerable<Measurement<long>> LeasedRows() =>
        LeaseKeepers.Keys
            .SelectMany(keeper => keeper.HeldRows())
            .GroupBy(held => held.Database, held => (long)held.Rows)
            .Select(db => new Measurement<long>(db.Sum(), new KeyValuePair<string, object?>("db", db.Key)));

    /// <summary>A count held up until disposed; the default one counts nothing.</summary>
    internal readonly struct Held(UpDownCounter<long>? counter, TagList tags) : IDisposable
    {
        private readonly TagList _tags = tags;

        public void Dispose() => counter?.Add(-1, in _tags);
    }

    private sealed class Observed<T>(ConcurrentDictionary<T, byte> observed, T item) : IDisposable
        where T : notnull
    {
        public void Dispose() => observed.TryRemove(item, out _);
    }
}
