using System.Collections.Concurrent;
using System.Threading.Channels;
using Microsoft.Extensions.Options;

namespace Procyon.Runtime;

/// <summary>One line a module logged through the <c>log</c> crate (or a panic).</summary>
public sealed record ModuleLogRecord(DateTimeOffset Time, string Level, string Target, string? File, uint Line, string Message)
{
    /// <summary>The trace of the call that wrote it, when the call has a span (an OTLP collector is set, see Observability).</summary>
    [System.Text.Json.Serialization.JsonIgnore(Condition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull)]
    public string? TraceId { get; init; }

    /// <summary>Whether this line is at least as severe as <paramref name="threshold"/> (a <see cref="Severity"/>).</summary>
    internal bool AtLeast(int threshold) => Severity(Level) <= threshold;

    /// <summary>What to answer a <c>level</c> that is no level; null for a level, or none.</summary>
    public static string? LevelProblem(string? level) =>
        level is null || Severity(level) >= 0 ? null : $"'{level}' is not a log level: use one of {string.Join(", ", ModuleAbi.LogLevels)}";

    /// <summary>The severity a <c>level</c> keeps: that level and the more severe ones; all lines when null.</summary>
    internal static int Threshold(string? level) => level is null ? int.MaxValue : Severity(level);

    /// <summary>0 for ERROR up to 4 for TRACE; -1 for a name that is no level.</summary>
    public static int Severity(string level)
    {
        for (var severity = 0; severity < ModuleAbi.LogLevels.Count; severity++)
        {
            if (string.Equals(ModuleAbi.LogLevels[severity], level, StringComparison.OrdinalIgnoreCase))
            {
                return severity;
            }
        }
        return -1;
    }
}

/// <summary>
/// The most recent log lines of each database, in memory, bounded by
/// <see cref="RuntimeOptions.LogLinesPerDatabase"/> lines and <see cref="RuntimeOptions.LogBytesPerDatabase"/>
/// bytes (the oldest go first). Each replica keeps the lines of the calls it ran; <c>GET /logs</c>
/// shows that replica's lines, and <see cref="Follow"/> the lines it writes from then on.
/// </summary>
public sealed class ModuleLogs(IOptions<RuntimeOptions> options)
{
    private readonly ConcurrentDictionary<string, Ring> _byDatabase = new(StringComparer.Ordinal);

    public void Append(string database, ModuleLogRecord record) => RingOf(database).Add(record);

    /// <summary>The last <paramref name="limit"/> lines at <paramref name="level"/> or more severe (all when null).</summary>
    public IReadOnlyList<ModuleLogRecord> Recent(string database, int limit, string? level = null) =>
        _byDatabase.TryGetValue(database, out var ring) ? ring.Last(limit, ModuleLogRecord.Threshold(level)) : [];

    /// <summary>
    /// The last <paramref name="limit"/> lines of <paramref name="database"/> and then each line
    /// appended after them, none twice and none missed, until the follower is disposed or the
    /// database's lines are cleared (it is deleted). A follower that falls more than
    /// <see cref="RuntimeOptions.LogFollowerBacklog"/> lines behind loses the oldest. Null when the
    /// database already has <see cref="RuntimeOptions.LogFollowersPerDatabase"/> followers.
    /// </summary>
    public LogFollower? Follow(string database, int limit, string? level = null) =>
        RingOf(database).Follow(limit, ModuleLogRecord.Threshold(level), options.Value);

    /// <summary>What to answer a follower beyond <see cref="RuntimeOptions.LogFollowersPerDatabase"/>.</summary>
    public static string TooManyFollowers(string database) =>
        $"too many readers follow the logs of '{database}' (Procyon:Runtime:LogFollowersPerDatabase)";

    private Ring RingOf(string database) =>
        _byDatabase.GetOrAdd(database, _ => new Ring(options.Value.LogLinesPerDatabase, options.Value.LogBytesPerDatabase));

    public void Clear(string database)
    {
        if (_byDatabase.TryRemove(database, out var ring))
        {
            ring.Close();
        }
    }

    private sealed class Ring(int lines, long bytes)
    {
        private readonly Queue<ModuleLogRecord> _records = new();
        private readonly List<(Channel<ModuleLogRecord> Channel, int Threshold)> _followers = [];
        private long _bytes;

        public void Add(ModuleLogRecord record)
        {
            lock (_records)
            {
                foreach (var (follower, threshold) in _followers)
                {
                    if (record.AtLeast(threshold))
                    {
                        follower.Writer.TryWrite(record);
                    }
                }
                _records.Enqueue(record);
                _bytes += Size(record);
                while (_records.Count > lines || _bytes > bytes)
                {
                    _bytes -= Size(_records.Dequeue());
                }
            }
        }

        public IReadOnlyList<ModuleLogRecord> Last(int limit, int threshold)
        {
            lock (_records)
            {
                var matching = _records.Where(r => r.AtLeast(threshold)).ToList();
                return matching.Skip(Math.Max(0, matching.Count - limit)).ToArray();
            }
        }

        public LogFollower? Follow(int limit, int threshold, RuntimeOptions options)
        {
            lock (_records)
            {
                if (_followers.Count >= options.LogFollowersPerDatabase)
                {
                    return null;
                }
                var channel = Channel.CreateBounded<ModuleLogRecord>(new BoundedChannelOptions(options.LogFollowerBacklog) { FullMode = BoundedChannelFullMode.DropOldest, SingleReader = true });
                var follower = (channel, threshold);
                _followers.Add(follower);
                return new LogFollower(Last(limit, threshold), channel.Reader, () =>
                {
                    lock (_records)
                    {
                        _followers.Remove(follower);
                    }
                });
            }
        }

        public void Close()
        {
            lock (_records)
            {
                foreach (var (follower, _) in _followers)
                {
                    follower.Writer.TryComplete();
                }
            }
        }

        /// <summary>What a line holds in memory, roughly: its texts in UTF-16.</summary>
        private static long Size(ModuleLogRecord record) =>
            2L * (record.Message.Length + record.Target.Length + (record.File?.Length ?? 0)) + 64;
    }
}

/// <summary>A reader of a database's log lines as they are written (see <see cref="ModuleLogs.Follow"/>).</summary>
/// <param name="recent">The lines written before it started following.</param>
/// <param name="next">The lines written since; it completes when the database is deleted.</param>
public sealed class LogFollower(IReadOnlyList<ModuleLogRecord> recent, ChannelReader<ModuleLogRecord> next, Action stop) : IDisposable
{
    /// <summary>
    /// The recent lines, then each new one, until the database is deleted or
    /// <paramref name="cancellationToken"/> ends it (which ends the stream, not with an exception);
    /// the follower is disposed at the end.
    /// </summary>
    public async IAsyncEnumerable<ModuleLogRecord> ReadAllAsync([System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        try
        {
            foreach (var record in recent)
            {
                yield return record;
            }
            while (await WaitToReadAsync(cancellationToken))
            {
                while (next.TryRead(out var record))
                {
                    yield return record;
                }
            }
        }
        finally
        {
            Dispose();
        }
    }

    private async Task<bool> WaitToReadAsync(CancellationToken cancellationToken)
    {
        try
        {
            return await next.WaitToReadAsync(cancellationToken);
        }
        catch (OperationCanceledException)
        {
            return false;
        }
    }

    public void Dispose() => stop();
}
