using System.ComponentModel.DataAnnotations;

namespace Procyon.Runtime.Scheduling;

/// <summary>The scheduler of scheduled tables, bound from the <c>Procyon:Scheduler</c> section.</summary>
public sealed class SchedulerOptions
{
    public const string Section = "Procyon:Scheduler";

    /// <summary>
    /// Workers leasing due rows and running batches of reducer rows at once. Reducer runs use the
    /// CPU, so one per core keeps lateness lowest; more add contention, not throughput.
    /// </summary>
    [Range(1, 1024)]
    public int Workers { get; set; } = Environment.ProcessorCount;

    /// <summary>Scheduled procedure runs at once; a sleeping one holds a slot, not a worker or a thread.</summary>
    [Range(1, 100_000)]
    public int MaxRunningProcedures { get; set; } = 64;

    /// <summary>
    /// Due rows of a reducer target one worker leases and runs in one transaction. Larger batches
    /// commit less often; after a failed run the batch runs again with a savepoint per row, and
    /// Postgres keeps up to 64 of those cheaply.
    /// </summary>
    [Range(1, 64)]
    public int BatchSize { get; set; } = 64;

    /// <summary>
    /// How long after its server died a leased reducer row is taken by another server. A live
    /// server renews its leases every third of the shorter lease and locks a batch's rows while it
    /// runs, so a long batch is never taken from it; effects commit only under the lease either way.
    /// </summary>
    [Range(typeof(TimeSpan), "00:00:01", "01:00:00")]
    public TimeSpan ReducerLease { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>
    /// How long after its server died a leased procedure row is run again elsewhere (at least
    /// once). A live server renews its leases every third of the shorter lease, so a procedure may
    /// sleep far longer than this and still run once.
    /// </summary>
    [Range(typeof(TimeSpan), "00:00:01", "1.00:00:00")]
    public TimeSpan ProcedureLease { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>The longest the scheduler sleeps without looking, should a notification be lost.</summary>
    [Range(typeof(TimeSpan), "00:00:00.100", "01:00:00")]
    public TimeSpan MaxIdle { get; set; } = TimeSpan.FromSeconds(30);
}
