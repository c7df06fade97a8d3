using System.Collections.Concurrent;

namespace Procyon.Runtime;

/// <summary>
/// The linear memory of this server's instances: live ones (running or sleeping calls) and idle ones
/// (pooled for reuse). New calls are admitted only below <see cref="RuntimeOptions.MaxTotalMemoryBytes"/>,
/// and the pool keeps instances only up to <see cref="RuntimeOptions.MaxIdleMemoryBytes"/>. Sizes are
/// what each instance may touch (its memory's length), counted when it is created and each time its
/// call returns to the host. Wasm grows only into the room it was granted on entering
/// (<see cref="Grant"/>, set aside from the budget while it runs), so the budget holds at every
/// memory.grow, not only at admission: a call that would grow past it traps, and is answered 503.
/// It counts the instances too, live and idle, for <c>procyon.instances</c>.
/// </summary>
public sealed class InstanceMemory(RuntimeOptions options)
{
    /// <summary>The modules whose idle instances this budget may drop when it runs short.</summary>
    private readonly ConcurrentDictionary<LoadedModule, byte> _pools = new();
    private long _live;
    private long _idle;
    private long _granted;
    private long _liveInstances;
    private long _idleInstances;

    public long LiveBytes => Volatile.Read(ref _live);

    public long IdleBytes => Volatile.Read(ref _idle);

    public long LiveInstances => Volatile.Read(ref _liveInstances);

    public long IdleInstances => Volatile.Read(ref _idleInstances);

    /// <summary>Whether a new call may take an instance, after dropping idle instances if need be.</summary>
    public bool MakeRoom()
    {
        if (HasRoom)
        {
            return true;
        }
        DropIdle();
        return HasRoom;
    }

    private bool HasRoom => LiveBytes + IdleBytes < options.MaxTotalMemoryBytes;

    /// <summary>Counts a call of <paramref name="database"/> refused (or stopped) for want of memory, and says why, for its 503.</summary>
    internal string Refuse(string database)
    {
        ProcyonTelemetry.Refused(database, ProcyonTelemetry.ShedReason.Memory);
        return $"the server's instances hold {(LiveBytes + IdleBytes) >> 20} MiB of memory, its budget (Procyon:Runtime:MaxTotalMemoryBytes) is {options.MaxTotalMemoryBytes >> 20} MiB; try again shortly";
    }

    /// <summary>
    /// Grants wasm about to run room to grow: <paramref name="wanted"/> bytes, or half of what the
    /// budget has left if less, so one call never takes the last of it and calls that run at the same
    /// time each get some. When short, idle instances are dropped first. The grant is set aside until
    /// <see cref="Ungrant"/>, after the growth it allowed is counted.
    /// </summary>
    internal long Grant(long wanted)
    {
        var grant = TryGrant(wanted);
        if (grant < wanted && IdleBytes > 0)
        {
            Ungrant(grant);
            DropIdle();
            grant = TryGrant(wanted);
        }
        return grant;
    }

    internal void Ungrant(long grant) => Interlocked.Add(ref _granted, -grant);

    internal void AddPool(LoadedModule module) => _pools.TryAdd(module, 0);

    internal void RemovePool(LoadedModule module) => _pools.TryRemove(module, out _);

    private long TryGrant(long wanted)
    {
        while (true)
        {
            var granted = Volatile.Read(ref _granted);
            var grant = Math.Clamp((options.MaxTotalMemoryBytes - LiveBytes - IdleBytes - granted) / 2, 0, wanted);
            if (Interlocked.CompareExchange(ref _granted, granted + grant, granted) == granted)
            {
                return grant;
            }
        }
    }

    private void DropIdle()
    {
        foreach (var pool in _pools.Keys)
        {
            pool.DropIdle();
        }
    }

    /// <summary>A live instance grew or shrank (or was created: from 0) by <paramref name="bytes"/>.</summary>
    internal void Grow(long bytes) => Interlocked.Add(ref _live, bytes);

    /// <summary>A live instance was created.</summary>
    internal void Created() => Interlocked.Increment(ref _liveInstances);

    /// <summary>Moves a live instance of <paramref name="bytes"/> to the idle pool, if the pool's share has room.</summary>
    internal bool TryPark(long bytes)
    {
        if (Interlocked.Add(ref _idle, bytes) > options.MaxIdleMemoryBytes)
        {
            Interlocked.Add(ref _idle, -bytes);
            return false;
        }
        Interlocked.Add(ref _live, -bytes);
        Interlocked.Decrement(ref _liveInstances);
        Interlocked.Increment(ref _idleInstances);
        return true;
    }

    /// <summary>An idle instance of <paramref name="bytes"/> serves a call again.</summary>
    internal void Unpark(long bytes)
    {
        Interlocked.Add(ref _live, bytes);
        Interlocked.Add(ref _idle, -bytes);
        Interlocked.Increment(ref _liveInstances);
        Interlocked.Decrement(ref _idleInstances);
    }

    /// <summary>An instance of <paramref name="bytes"/> was disposed.</summary>
    internal void Release(long bytes, bool idle)
    {
        Interlocked.Add(ref idle ? ref _idle : ref _live, -bytes);
        Interlocked.Decrement(ref idle ? ref _idleInstances : ref _liveInstances);
    }
}
