using System.Runtime.CompilerServices;
using Procyon.Storage.Tables;

namespace Procyon.Runtime.Scheduling;

/// <summary>One run of a scheduled row on this server, as the console shows it.</summary>
/// <param name="LatenessMs">How long after its due time it started, in milliseconds.</param>
/// <param name="Status"><c>ok</c>, <c>error</c> or <c>timeout</c>, as its call's result says.</param>
public sealed record ScheduledRunRecord(long ScheduledId, DateTimeOffset Due, DateTimeOffset StartedAt, double LatenessMs, long DurationMicros, string Status, string? Error);

/// <summary>
/// The recent runs of each scheduled table on this server (the console's scheduler view): the
/// last <see cref="Kept"/> runs and, apart from them so a stream of good runs does not hide them,
/// the last <see cref="Kept"/> failures. Kept per loaded table: a module replaced or unloaded
/// takes its history with it, so the history holds no more than the loaded tables do.
/// </summary>
public sealed class ScheduleHistory
{
    public const int Kept = 20;

    private readonly ConditionalWeakTable<TableSchema, Runs> _tables = new();

    internal void Record(TableSchema table, ScheduledRunRecord run) => _tables.GetOrCreateValue(table).Add(run);

    /// <summary>The table's recent runs and failures, newest first.</summary>
    public (IReadOnlyList<ScheduledRunRecord> Recent, IReadOnlyList<ScheduledRunRecord> Failures) Of(TableSchema table) =>
        _tables.TryGetValue(table, out var runs) ? runs.Read() : ([], []);

    private sealed class Runs
    {
        private readonly Queue<ScheduledRunRecord> _recent = new();
        private readonly Queue<ScheduledRunRecord> _failures = new();
        private readonly Lock _lock = new();

        public void Add(ScheduledRunRecord run)
        {
            lock (_lock)
            {
                Keep(_recent, run);
                if (run.Status != "ok")
                {
                    Keep(_failures, run);
                }
            }
        }

        public (IReadOnlyList<ScheduledRunRecord>, IReadOnlyList<ScheduledRunRecord>) Read()
        {
            lock (_lock)
            {
                return (_recent.Reverse().ToList(), _failures.Reverse().ToList());
            }
        }

        private static void Keep(Queue<ScheduledRunRecord> runs, ScheduledRunRecord run)
        {
            if (runs.Count == Kept)
            {
                runs.Dequeue();
            }
            runs.Enqueue(run);
        }
    }
}
