using System.Threading.RateLimiting;
using Microsoft.Extensions.Options;
using Procyon.Storage;

namespace Procyon.Runtime;

/// <summary>
/// Takes turns at preparing published modules, which costs cores and memory: at most
/// <see cref="RuntimeOptions.MaxConcurrentPrepares"/> at once on this server, up to
/// <see cref="RuntimeOptions.MaxQueuedPrepares"/> more waiting in order, any beyond refused.
/// </summary>
public sealed class PrepareLimiter(IOptions<RuntimeOptions> options) : IDisposable
{
    private readonly ConcurrencyLimiter _limiter = new(new ConcurrencyLimiterOptions
    {
        PermitLimit = options.Value.MaxConcurrentPrepares,
        QueueLimit = options.Value.MaxQueuedPrepares,
        QueueProcessingOrder = QueueProcessingOrder.OldestFirst,
    });

    /// <summary>Waits for a turn, to be ended by disposing the lease; throws <see cref="OverloadedException"/> when the queue is full.</summary>
    public async Task<RateLimitLease> WaitTurnAsync(CancellationToken cancellationToken)
    {
        var lease = await _limiter.AcquireAsync(1, cancellationToken);
        if (lease.IsAcquired)
        {
            return lease;
        }
        lease.Dispose();
        throw new OverloadedException(
            $"the server is preparing {options.Value.MaxConcurrentPrepares} modules and {options.Value.MaxQueuedPrepares} more are waiting (Procyon:Runtime:MaxConcurrentPrepares, MaxQueuedPrepares): try again shortly");
    }

    public void Dispose() => _limiter.Dispose();
}
