using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using Procyon.Runtime;

namespace Procyon.Server.Dashboard;

/// <summary>One bucket of a database's activity: calls that ended in it and scheduled rows that started in it.</summary>
/// <param name="P50Ms">Median call duration in milliseconds, to within a fifth (null without calls).</param>
/// <param name="LatenessP99Ms">99th percentile of how late scheduled rows started, to within a fifth (null without runs).</param>
internal sealed record ActivityPoint(DateTimeOffset At, long Calls, long Errors, double? P50Ms, double? P99Ms, long ScheduledRuns, double? LatenessP99Ms);

/// <param name="BucketSeconds">The width of each point, which counts what happened in the <paramref name="BucketSeconds"/> from its <c>at</c>.</param>
internal sealed record ActivityView(int BucketSeconds, IReadOnlyList<ActivityPoint> Points);

/// <summary>
/// The console's charts: per database, calls, errors, p50 and p99 durations and scheduler
/// lateness over the last five minutes, in five-second buckets, kept in memory on this server.
/// It listens to the server's own instruments (<c>procyon.call.duration</c> and
/// <c>procyon.scheduler.lateness</c>, whatever exports them), so the charts count exactly what
/// <c>/metrics</c> does. Databases without activity for five minutes are dropped.
/// </summary>
internal sealed class CallActivity : IHostedService, IDisposable
{
    public static readonly TimeSpan Bucket = TimeSpan.FromSeconds(5);

    public const int Buckets = 60;

    private static readonly object CallsState = new();

    private readonly ConcurrentDictionary<string, Series> _databases = new(StringComparer.Ordinal);
    private readonly MeterListener _listener = new();
    private long _swept;

    public CallActivity()
    {
        _listener.InstrumentPublished = (instrument, listener) =>
        {
            if (instrument.Meter.Name == ProcyonTelemetry.Name && instrument.Name is ProcyonTelemetry.CallDurationName or ProcyonTelemetry.LatenessName)
            {
                listener.EnableMeasurementEvents(instrument, instrument.Name == ProcyonTelemetry.CallDurationName ? CallsState : null);
            }
        };
        _listener.SetMeasurementEventCallback<double>(OnMeasurement);
    }

    public Task StartAsync(CancellationToken cancellationToken)
    {
        _listener.Start();
        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken)
    {
        _listener.Dispose();
        return Task.CompletedTask;
    }

    public void Dispose() => _listener.Dispose();

    /// <summary>The last five minutes of a database, oldest first, every bucket present.</summary>
    public ActivityView Of(string database)
    {
        var now = BucketOf(DateTimeOffset.UtcNow);
        var series = _databases.GetValueOrDefault(database);
        var points = new ActivityPoint[Buckets];
        for (var i = 0; i < Buckets; i++)
        {
            var index = now - Buckets + 1 + i;
            var at = DateTimeOffset.FromUnixTimeSeconds(index * (long)Bucket.TotalSeconds);
            points[i] = series?.Read(index, at) ?? new ActivityPoint(at, 0, 0, null, null, 0, null);
        }
        return new ActivityView((int)Bucket.TotalSeconds, points);
    }

    private static long BucketOf(DateTimeOffset time) => time.ToUnixTimeSeconds() / (long)Bucket.TotalSeconds;

    private void OnMeasurement(Instrument instrument, double seconds, ReadOnlySpan<KeyValuePair<string, object?>> tags, object? state)
    {
        string? database = null;
        var failed = false;
        foreach (var tag in tags)
        {
            if (tag.Key == "db")
            {
                database = tag.Value as string;
            }
            else if (tag.Key == "status")
            {
                failed = tag.Value as string != "ok";
            }
        }
        if (database is null)
        {
            return;
        }
        var now = BucketOf(DateTimeOffset.UtcNow);
        _databases.GetOrAdd(database, static _ => new Series()).Record(now, state == CallsState, seconds, failed);
        if (Interlocked.Exchange(ref _swept, now) != now)
        {
            foreach (var (name, series) in _databases)
            {
                if (series.Newest <= now - Buckets)
                {
                    _databases.TryRemove(new KeyValuePair<string, Series>(name, series));
                }
            }
        }
    }

    /// <summary>A database's buckets in a ring; a bucket is reused once it is older than the window.</summary>
    private sealed class Series
    {
        private readonly Slot[] _slots = new Slot[Buckets];
        private readonly Lock _lock = new();

        public long Newest { get; private set; }

        public void Record(long index, bool call, double seconds, bool failed)
        {
            lock (_lock)
            {
                ref var slot = ref _slots[index % Buckets];
                if (slot.Index != index)
                {
                    slot.Reset(index);
                }
                if (call)
                {
                    slot.Calls++;
                    slot.Errors += failed ? 1 : 0;
                    Histogram.Add(ref slot.Durations, seconds);
                }
                else
                {
                    slot.Runs++;
                    Histogram.Add(ref slot.Lateness, seconds);
                }
                Newest = Math.Max(Newest, index);
            }
        }

        public ActivityPoint? Read(long index, DateTimeOffset at)
        {
            lock (_lock)
            {
                var slot = _slots[index % Buckets];
                return slot.Index != index ? null : new ActivityPoint(
                    at,
                    slot.Calls,
                    slot.Errors,
                    Histogram.QuantileMs(slot.Durations, slot.Calls, 0.5),
                    Histogram.QuantileMs(slot.Durations, slot.Calls, 0.99),
                    slot.Runs,
                    Histogram.QuantileMs(slot.Lateness, slot.Runs, 0.99));
            }
        }
    }

    private struct Slot
    {
        public long Index;
        public long Calls;
        public long Errors;
        public long Runs;
        public int[]? Durations;
        public int[]? Lateness;

        public void Reset(long index)
        {
            Index = index;
            Calls = Errors = Runs = 0;
            Durations?.AsSpan().Clear();
            Lateness?.AsSpan().Clear();
        }
    }

    /// <summary>Counts in buckets two per octave wide, from 2^-14 s (61 µs) to 2^7 s; a quantile is its bucket's geometric middle.</summary>
    private static class Histogram
    {
        private const int Smallest = -14;
        private const int Size = (7 - Smallest) * 2 + 2;

        public static void Add(ref int[]? counts, double seconds)
        {
            counts ??= new int[Size];
            var half = seconds <= 0 ? 0 : (int)Math.Ceiling(Math.Log2(seconds) * 2) - Smallest * 2;
            counts[Math.Clamp(half, 0, Size - 1)]++;
        }

        public static double? QuantileMs(int[]? counts, long total, double quantile)
        {
            if (counts is null || total == 0)
            {
                return null;
            }
            var rank = Math.Max(1, (long)Math.Ceiling(quantile * total));
            var seen = 0L;
            var i = 0;
            for (; i < Size - 1 && (seen += counts[i]) < rank; i++)
            {
            }
            return Math.Round(Math.Pow(2, (i - 0.5) / 2.0 + Smallest) * 1000, 3);
        }
    }
}
