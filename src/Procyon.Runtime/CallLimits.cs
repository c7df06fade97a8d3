using System.Threading.RateLimiting;
using Microsoft.Extensions.Options;

namespace Procyon.Runtime;

/// <summary>
/// Calls in flight (sleeping ones included) per database and per identity, so one database or
/// one caller cannot take every slot of the server; calls without a token share one identity's
/// budget. Nothing waits: a call over either limit is refused at once.
/// </summary>
public sealed class CallLimits(IOptions<RuntimeOptions> options) : IDisposable
{
    private readonly PartitionedRateLimiter<CallRequest> _databases = PartitionedRateLimiter.Create<CallRequest, string>(request =>
        RateLimitPartition.GetConcurrencyLimiter(request.Database, _ => Limit(options.Value.MaxCallsPerDatabase)));

    private readonly PartitionedRateLimiter<CallRequest> _identities = PartitionedRateLimiter.Create<CallRequest, Identity>(request =>
        RateLimitPartition.GetConcurrencyLimiter(request.Caller, _ => Limit(options.Value.MaxCallsPerIdentity)));

    /// <summary>A lease to dispose when the call ends, or the failure that refuses the call.</summary>
    internal (IDisposable? Lease, CallFailure Failure, string? Error) Enter(CallRequest request)
    {
        var database = _databases.AttemptAcquire(request);
        if (!database.IsAcquired)
        {
            database.Dispose();
            return (null, CallFailure.Overloaded, $"database '{request.Database}' has {options.Value.MaxCallsPerDatabase} calls in flight (Procyon:Runtime:MaxCallsPerDatabase); try again shortly");
        }
        var identity = _identities.AttemptAcquire(request);
        if (!identity.IsAcquired)
        {
            database.Dispose();
            identity.Dispose();
            var who = request.Caller == Identity.Anonymous ? "calls without a token" : "this identity";
            return (null, CallFailure.TooManyCalls, $"{who} already have {options.Value.MaxCallsPerIdentity} calls in flight (Procyon:Runtime:MaxCallsPerIdentity); try again shortly");
        }
        return (new Leases(database, identity), CallFailure.None, null);
    }

    public void Dispose()
    {
        _databases.Dispose();
        _identities.Dispose();
    }

    private static ConcurrencyLimiterOptions Limit(int permits) => new() { PermitLimit = permits, QueueLimit = 0 };

    /// <summary>Both leases of a call, released together.</summary>
    private sealed class Leases(RateLimitLease database, RateLimitLease identity) : IDisposable
    {
        public void Dispose()
        {
            database.Dispose();
            identity.Dispose();
        }
    }
}
