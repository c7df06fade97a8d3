namespace Procyon.Runtime;

/// <summary>
/// The linear memory of this server's instances: live ones (running or sleeping calls) and idle
/// ones (pooled for reuse). New calls are admitted only below <see cref="RuntimeOptions.MaxTotalMemoryBytes"/>,
/// and the pool keeps instances only up to <see cref="RuntimeOptions.MaxIdleMemoryBytes"/>. Sizes are
/// what each instance may touch (its memory's length), counted when it is created and each time
/// its call returns to the host, so the count may trail a running call's growth by that much.
/// </summary>
public sealed class InstanceMemory(RuntimeOptions options)
{
    private long _live;
    private long _idle;

    public long LiveBytes => Volatile.Read(ref _live);

    public long IdleBytes => Volatile.Read(ref _idle);

    /// <summary>Whether a new call may take an instance.</summary>
    public bool HasRoom => LiveBytes + IdleBytes < options.MaxTotalMemoryBytes;

    /// <summary>Why a call was refused, for its 503.</summary>
    public string Refusal =>
        $"the server's instances hold {(LiveBytes + IdleBytes) >> 20} MiB of memory, its budget (Procyon:Runtime:MaxTotalMemoryBytes) is {options.MaxTotalMemoryBytes >> 20} MiB; try again shortly";

    /// <summary>A live instance grew or shrank (or was created: from 0) by <paramref name="bytes"/>.</summary>
    internal void Grow(long bytes) => Interlocked.Add(ref _live, bytes);

    /// <summary>Moves a live instance of <paramref name="bytes"/> to the idle pool, if the pool's share has room.</summary>
    internal bool TryPark(long bytes)
    {
        if (Interlocked.Add(ref _idle, bytes) > options.MaxIdleMemoryBytes)
        {
            Interlocked.Add(ref _idle, -bytes);
            return false;
        }
        Interlocked.Add(ref _live, -bytes);
        return true;
    }

    /// <summary>An idle instance of <paramref name="bytes"/> serves a call again.</summary>
    internal void Unpark(long bytes)
    {
        Interlocked.Add(ref _live, bytes);
        Interlocked.Add(ref _idle, -bytes);
    }

    /// <summary>An instance of <paramref name="bytes"/> was disposed.</summary>
    internal void Release(long bytes, bool idle) => Interlocked.Add(ref idle ? ref _idle : ref _live, -bytes);
}
