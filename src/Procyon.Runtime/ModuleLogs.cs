using System.Collections.Concurrent;
using System.Threading.Channels;
using Microsoft.Extensions.Options;

namespace Procyon.Runtime;

/// <summary>One line a module logged through the <c>log</c> crate (or a panic).</summary>
public sealed record ModuleLogRecord(DateTimeOffset Time, string Level, string Target, string? File, uint Line, string Message);

/// <summary>
/// The most recent log lines of each database, in memory, bounded by
/// <see cref="RuntimeOptions.LogLinesPerDatabase"/> lines and <see cref="RuntimeOptions.LogBytesPerDatabase"/>
/// bytes (the oldest go first). Each replica keeps the lines of the calls it ran; <c>GET /logs</c>
/// shows that replica's lines, and <see cref="Follow"/> the lines it writes from then on.
/// </summary>
public sealed class ModuleLogs(IOptions<RuntimeOptions> options)
{
    private readonly ConcurrentDictionary<string, Ring> _byDatabase = new(StringComparer.Ordinal);

    public void Append(string database, ModuleLogRecord record) =>
        _byDatabase.GetOrAdd(database, _ => new Ring(options.Value.LogLinesPerDatabase, options.Value.LogBytesPerDatabase)).Add(record);

    public IReadOnlyList<ModuleLogRecord> Recent(string database, int limit) =>
        _byDatabase.TryGetValue(database, out var ring) ? ring.Last(limit) : [];

    /// <summary>
    /// The last <paramref name="limit"/> lines of <paramref name="database"/> and then each line
    /// appended after them, none twice and none missed, until the follower is disposed or the
    /// database's lines are cleared (it is deleted). A follower that falls more than
    /// <see cref="RuntimeOptions.LogFollowerBacklog"/> lines behind loses the oldest. Null when the
    /// database already has <see cref="RuntimeOptions.LogFollowersPerDatabase"/> followers.
    /// </summary>
    public LogFollower? Follow(string database, int limit) =>
        _byDatabase.GetOrAdd(database, _ => new Ring(options.Value.LogLinesPerDatabase, options.Value.LogBytesPerDatabase)).Follow(limit, options.Value);

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
        private readonly List<Channel<ModuleLogRecord>> _followers = [];
        private long _bytes;

        public void Add(ModuleLogRecord record)
        {
            lock (_records)
            {
                foreach (var follower in _followers)
                {
                    follower.Writer.TryWrite(record);
                }
                _records.Enqueue(record);
                _bytes += Size(record);
                while (_records.Count > lines || _bytes > bytes)
                {
                    _bytes -= Size(_records.Dequeue());
                }
            }
        }

        public IReadOnlyList<ModuleLogRecord> Last(int limit)
        {
            lock (_records)
            {
                return _records.Skip(Math.Max(0, _records.Count - limit)).ToArray();
            }
        }

        public LogFollower? Follow(int limit, RuntimeOptions options)
        {
            lock (_records)
            {
                if (_followers.Count >= options.LogFollowersPerDatabase)
                {
                    return null;
                }
                var channel = Channel.CreateBounded<ModuleLogRecord>(new BoundedChannelOptions(options.LogFollowerBacklog) { FullMode = BoundedChannelFullMode.DropOldest, SingleReader = true });
                _followers.Add(channel);
                return new LogFollower(Last(limit), channel.Reader, () =>
                {
                    lock (_records)
                    {
                        _followers.Remove(channel);
                    }
                });
            }
        }

        public void Close()
        {
            lock (_records)
            {
                foreach (var follower in _followers)
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
public sealed class LogFollower(IReadOnlyList<ModuleLogRecord> recent, ChannelReader<ModuleLogRecord> next, Action stop) : IDisposable
{
    /// <summary>The lines written before it started following.</summary>
    public IReadOnlyList<ModuleLogRecord> Recent { get; } = recent;

    /// <summary>The lines written since; it completes when the database is deleted.</summary>
    public ChannelReader<ModuleLogRecord> Next { get; } = next;

    public void Dispose() => stop();
}
