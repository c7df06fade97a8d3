using System.Collections.Concurrent;
using Microsoft.Extensions.Options;

namespace Procyon.Runtime;

/// <summary>One line a module logged through the <c>log</c> crate (or a panic).</summary>
public sealed record ModuleLogRecord(DateTimeOffset Time, string Level, string Target, string? File, uint Line, string Message);

/// <summary>
/// The most recent log lines of each database, in memory, bounded by
/// <see cref="RuntimeOptions.LogLinesPerDatabase"/> lines and <see cref="RuntimeOptions.LogBytesPerDatabase"/>
/// bytes (the oldest go first). Each replica keeps the lines of the calls it ran; <c>GET /logs</c>
/// shows that replica's lines.
/// </summary>
public sealed class ModuleLogs(IOptions<RuntimeOptions> options)
{
    private readonly ConcurrentDictionary<string, Ring> _byDatabase = new(StringComparer.Ordinal);

    public void Append(string database, ModuleLogRecord record) =>
        _byDatabase.GetOrAdd(database, _ => new Ring(options.Value.LogLinesPerDatabase, options.Value.LogBytesPerDatabase)).Add(record);

    public IReadOnlyList<ModuleLogRecord> Recent(string database, int limit) =>
        _byDatabase.TryGetValue(database, out var ring) ? ring.Last(limit) : [];

    public void Clear(string database) => _byDatabase.TryRemove(database, out _);

    private sealed class Ring(int lines, long bytes)
    {
        private readonly Queue<ModuleLogRecord> _records = new();
        private long _bytes;

        public void Add(ModuleLogRecord record)
        {
            lock (_records)
            {
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

        /// <summary>What a line holds in memory, roughly: its texts in UTF-16.</summary>
        private static long Size(ModuleLogRecord record) =>
            2L * (record.Message.Length + record.Target.Length + (record.File?.Length ?? 0)) + 64;
    }
}
