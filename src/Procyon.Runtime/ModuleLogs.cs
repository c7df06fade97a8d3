using System.Collections.Concurrent;
using Microsoft.Extensions.Options;

namespace Procyon.Runtime;

/// <summary>One line a module logged through the <c>log</c> crate (or a panic).</summary>
public sealed record ModuleLogRecord(DateTimeOffset Time, string Level, string Target, string? File, uint Line, string Message);

/// <summary>
/// The most recent log lines of each database, in memory. Each replica keeps the lines of the
/// calls it ran; <c>GET /logs</c> shows that replica's lines.
/// </summary>
public sealed class ModuleLogs(IOptions<RuntimeOptions> options)
{
    private readonly ConcurrentDictionary<string, Ring> _byDatabase = new(StringComparer.Ordinal);

    public void Append(string database, ModuleLogRecord record) =>
        _byDatabase.GetOrAdd(database, _ => new Ring(options.Value.LogLinesPerDatabase)).Add(record);

    public IReadOnlyList<ModuleLogRecord> Recent(string database, int limit) =>
        _byDatabase.TryGetValue(database, out var ring) ? ring.Last(limit) : [];

    public void Clear(string database) => _byDatabase.TryRemove(database, out _);

    private sealed class Ring(int capacity)
    {
        private readonly ModuleLogRecord[] _records = new ModuleLogRecord[capacity];
        private long _written;

        public void Add(ModuleLogRecord record)
        {
            lock (_records)
            {
                _records[_written++ % _records.Length] = record;
            }
        }

        public IReadOnlyList<ModuleLogRecord> Last(int limit)
        {
            lock (_records)
            {
                var count = (int)Math.Min(Math.Min(limit, _written), _records.Length);
                var result = new ModuleLogRecord[count];
                for (var i = 0; i < count; i++)
                {
                    result[i] = _records[(_written - count + i) % _records.Length];
                }
                return result;
            }
        }
    }
}
