namespace Procyon.Benchmarks;

/// <summary>Percentiles and the process's own peaks while a benchmark runs.</summary>
internal static class Measure
{
    /// <summary>
    /// Runs <paramref name="round"/> (one pass over every side of a benchmark) until the JIT
    /// settles: until a round compiles fewer than 50 methods, at most 40 rounds. Tiered
    /// compilation goes on recompiling hot methods for many seconds after a process starts, more
    /// of them for a whole server than for a bare endpoint; measured before it settles, a side
    /// pays for its share of that background work, which a long-running server pays once.
    /// </summary>
    /// <returns>The rounds it took.</returns>
    public static async Task<int> WarmUntilJitSettlesAsync(Func<Task> round)
    {
        for (var rounds = 1; ; rounds++)
        {
            var compiled = System.Runtime.JitInfo.GetCompiledMethodCount();
            await round();
            if (System.Runtime.JitInfo.GetCompiledMethodCount() - compiled < 50 || rounds == 40)
            {
                return rounds;
            }
        }
    }

    public static double Percentile(IReadOnlyList<double> sorted, double p) =>
        sorted.Count == 0 ? double.NaN : sorted[Math.Min(sorted.Count - 1, (int)Math.Ceiling(p / 100 * sorted.Count) - 1)];

    /// <summary>Samples thread count and resident memory of a process (this one by default) until disposed.</summary>
    public sealed class Peaks : IAsyncDisposable
    {
        private readonly CancellationTokenSource _stop = new();
        private readonly string _status;
        private readonly Task _sampling;

        public Peaks(int? processId = null)
        {
            _status = $"/proc/{processId?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "self"}/status";
            _sampling = SampleAsync();
        }

        public int Threads { get; private set; }

        public long RssBytes { get; private set; }

        public async ValueTask DisposeAsync()
        {
            await _stop.CancelAsync();
            await _sampling;
            _stop.Dispose();
        }

        private async Task SampleAsync()
        {
            using var timer = new PeriodicTimer(TimeSpan.FromMilliseconds(20));
            do
            {
                // /proc/<pid>/status is one small read; Process.Threads would walk every thread.
                foreach (var line in await File.ReadAllLinesAsync(_status))
                {
                    if (line.StartsWith("Threads:", StringComparison.Ordinal))
                    {
                        Threads = Math.Max(Threads, int.Parse(line["Threads:".Length..].Trim(), System.Globalization.CultureInfo.InvariantCulture));
                    }
                    else if (line.StartsWith("VmRSS:", StringComparison.Ordinal))
                    {
                        var kib = long.Parse(line["VmRSS:".Length..].Replace("kB", "", StringComparison.Ordinal).Trim(), System.Globalization.CultureInfo.InvariantCulture);
                        RssBytes = Math.Max(RssBytes, kib * 1024);
                    }
                }
            }
            while (await timer.WaitForNextTickAsync(_stop.Token).AsTask().ContinueWith(t => t.IsCompletedSuccessfully && t.Result, TaskScheduler.Default));
        }
    }
}
