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
    /// How long a claimed batch of reducer runs may take before another server takes its rows
    /// (their effects commit only under the lease, so they still happen exactly once).
    /// </summary>
    [Range(typeof(TimeSpan), "00:00:01", "01:00:00")]
    public TimeSpan ReducerLease { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>How long a claimed procedure run may take before another server runs it again (at-least-once).</summary>
    [Range(typeof(TimeSpan), "00:00:01", "1.00:00:00")]
    public TimeSpan ProcedureLease { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>The longest the scheduler sleeps without looking, should a notification be lost.</summary>
    [Range(typeof(TimeSpan), "00:00:00.100", "01:00:00")]
    public TimeSpan MaxIdle { get; set; } = TimeSpan.FromSeconds(30);
}
