namespace Procyon.Runtime;

/// <summary>A procedure call registered with <see cref="DurableCalls"/> so that a cancellation by request can stop it.</summary>
internal sealed class CancellableCall(DurableCalls calls, Guid id, CancellationTokenSource source) : IDisposable
{
    /// <summary>Ends when the call is cancelled by request or the server shuts down.</summary>
    public CancellationToken Token => source.Token;

    /// <summary>Whether a request cancelled it (rather than the server's shutdown).</summary>
    public bool Cancelled { get; private set; }

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
