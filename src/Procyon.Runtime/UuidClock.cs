namespace Procyon.Runtime;

/// <summary>
/// The clock behind <c>ctx.new_uuid_v7()</c> (the <c>uuid_v7_clock</c> import): milliseconds
/// since the Unix epoch times 2^16 plus a counter, larger at every reading. One for the whole
/// server rather than per instance, because a database's calls run on many pooled instances:
/// so every v7 UUID this server makes, in any call of any database, sorts after those it made
/// before. When more than 65,536 are made in one millisecond, or the system clock steps back,
/// the counter carries into the milliseconds, which then run ahead of the clock until it catches up.
/// </summary>
internal sealed class UuidClock(TimeProvider time)
{
    public static UuidClock Server { get; } = new(TimeProvider.System);

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
