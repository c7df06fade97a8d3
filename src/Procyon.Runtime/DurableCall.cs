using Procyon.Storage;

namespace Procyon.Runtime;

/// <summary>
/// A procedure call that may sleep in Postgres: its id, and whether (and where) it was written
/// there. Sleeps of at least <see cref="RuntimeOptions.DurableSleepAfter"/> are saved; once saved,
/// the call is this server's only while it holds the lease, and it ends by moving its result to
/// <c>procyon.calls</c>.
/// </summary>
/// <param name="owner">The owner of the database the call runs on.</param>
internal sealed class DurableCall(DurableCalls calls, CallRequest request, string sha256, Identity? owner, DateTimeOffset startedAt)
{
    private Task<bool>? _saving;

    /// <summary>Set once any snapshot of the call was written: from then on its row exists and must be finished, whatever later saves do.</summary>
    private bool _saved;

    private static readonly long MaxWakeMicros = UnixTime.ToMicros(new DateTimeOffset(9999, 1, 1, 0, 0, 0, TimeSpan.Zero));

    public Guid Id => request.CallId;

    /// <summary>When the call started (before any sleep, on whichever server).</summary>
    public DateTimeOffset StartedAt => startedAt;

    /// <summary>Whether a snapshot of the call was written (once <see cref="SettledAsync"/> is done).</summary>
    public bool Saved => _saved;

    /// <summary>Whether another server took the call over: this one must not finish it.</summary>
    public bool Lost { get; private set; }

    /// <summary>
    /// Called while the stack is unwound for a sleep until <paramref name="targetMicros"/>: takes the
    /// snapshot now and writes it as the call sleeps; null for a nap shorter than the threshold.
    /// </summary>
    public Task<bool>? Sleeping(ModuleInstance instance, uint functionId, ReadOnlyMemory<byte> arguments, long timestampMicros, long targetMicros)
    {
        // Beyond what a timestamp holds the call sleeps in memory only (and Task.Delay refuses it anyway).
        if (targetMicros > MaxWakeMicros || UnixTime.ToDateTimeOffset(targetMicros) is var wakeAt && wakeAt - DateTimeOffset.UtcNow < calls.Threshold)
        {
            return null;
        }
        var started = System.Diagnostics.Stopwatch.GetTimestamp();
        var snapshot = instance.Snapshot(functionId, arguments.Span, timestampMicros);
        if (!calls.Admits(request, snapshot.Length, System.Diagnostics.Stopwatch.GetElapsedTime(started)))
        {
            return null;
        }
        var call = new SleepingCall(Id, request.Database, sha256, request.Function, request.Caller.ToString(), request.Origin, startedAt, wakeAt, snapshot, request.ScheduledTable, (long?)request.ScheduleId);
        return _saving = SaveAsync(call);
    }

    private async Task<bool> SaveAsync(SleepingCall call)
    {
        var saved = await calls.SaveAsync(call, owner);
        _saved |= saved;
        return saved;
    }

    /// <summary>After the sleep: whether this server still holds the call (it does if it was never saved).</summary>
    public async Task<bool> WokeAsync(Task<bool> saving)
    {
        if (!await saving)
        {
            return true;
        }
        Lost = !await calls.StillHeldAsync(Id);
        return !Lost;
    }

    /// <summary>Waits for a save under way, whatever became of the call.</summary>
    public Task SettledAsync() => _saving ?? Task.CompletedTask;
}
