namespace Procyon.Runtime;

/// <summary>A procedure call registered with <see cref="DurableCalls"/> so that a cancellation by request can stop it.</summary>
internal sealed class CancellableCall(DurableCalls calls, Guid id, CancellationTokenSource source) : IDisposable
{
    /// <summary>Ends when the call is cancelled by request or the server shuts down.</summary>
    public CancellationToken Token => source.Token;

    /// <summary>Whether a request cancelled it (rather than the server's shutdown).</summary>
    public bool Cancelled { get; private set; }

    /// <summary>
    /// Runs the call's work under <see cref="Token"/>; once a request cancelled it (while it waited
    /// for a slot, slept or ran), its outcome is <paramref name="cancelled"/>, whatever the work returned.
    /// </summary>
    public async Task<T> RunAsync<T>(Func<CancellationToken, Task<T>> work, T cancelled)
    {
        try
        {
            var outcome = await work(Token);
            return Cancelled ? cancelled : outcome;
        }
        catch (OperationCanceledException) when (Cancelled)
        {
            return cancelled;
        }
    }

    public void Cancel()
    {
        Cancelled = true;
        try
        {
            source.Cancel();
        }
        catch (ObjectDisposedException)
        {
            // The call ended as the cancellation came.
        }
    }

    public void Dispose()
    {
        calls.Forget(id);
        source.Dispose();
    }
}
