using System.Collections.Concurrent;

namespace Procyon.Runtime;

/// <summary>
/// The clock behind <c>ctx.new_uuid_v7()</c> (the <c>uuid_v7_clock</c> import) for one database:
/// milliseconds since the Unix epoch times 2^16 plus a counter, larger at every reading. It lives
/// in the host rather than in an instance, because a database's calls run on many pooled
/// instances (and on earlier versions of its module): so every v7 UUID this server makes for the
/// database sorts after those it made before. When more than 65,536 are made in one millisecond,
/// or the system clock steps back, the counter carries into the milliseconds, which then run ahead
/// of the clock until it catches up: one clock per database keeps a module that makes UUIDs as
/// fast as it can from moving other databases' clocks ahead.
/// </summary>
internal sealed class UuidClock(TimeProvider time)
{
    private ulong _last;

    public ulong Next()
    {
        // A clock before 1970 reads as 1970; DateTimeOffset ends in year 9999, well within 48 bits of milliseconds.
        var now = (ulong)Math.Max(0, time.GetUtcNow().ToUnixTimeMilliseconds()) << 16;
        while (true)
        {
            var last = Volatile.Read(ref _last);
            var next = Math.Max(now, last + 1);
            if (Interlocked.CompareExchange(ref _last, next, last) == last)
            {
                return next;
            }
        }
    }
}

/// <summary>The <see cref="UuidClock"/> of each database on this server.</summary>
internal sealed class UuidClocks(TimeProvider time)
{
    private readonly ConcurrentDictionary<string, UuidClock> _byDatabase = new(StringComparer.Ordinal);

    public UuidClock For(string database) => _byDatabase.GetOrAdd(database, static (_, time) => new UuidClock(time), time);

    /// <summary>Drops a deleted database's clock: one made again under its name starts from the system clock.</summary>
    public void Forget(string database) => _byDatabase.TryRemove(database, out _);
}
