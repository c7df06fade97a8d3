using System.Threading.RateLimiting;
using Microsoft.Extensions.Options;

namespace Procyon.Runtime;

/// <summary>
/// Calls in flight (sleeping ones included) per database and per identity, so one database or
/// one caller cannot take every slot of the server; calls without a token share one identity's
/// budget. Nothing waits: a call over either limit is refused at once.
/// </summary>
public sealed class CallLimits : IDisposable
{
    private readonly IOptions<RuntimeOptions> _options;
    private readonly PartitionedRateLimiter<CallRequest> _databases;
    private readonly PartitionedRateLimiter<CallRequest> _identities;

    public CallLimits(IOptions<RuntimeOptions> options)
    {
        _options = options;
        // The limiter factories are made once: a partition is looked up on every call and its limiter made only the first time.
        Func<string, RateLimiter> database = _ => new ConcurrencyLimiter(Limit(options.Value.MaxCallsPerDatabase));
        Func<Identity, RateLimiter> identity = _ => new ConcurrencyLimiter(Limit(options.Value.MaxCallsPerIdentity));
        _databases = PartitionedRateLimiter.Create<CallRequest, string>(request => new RateLimitPartition<string>(request.Database, database));
        _identities = PartitionedRateLimiter.Create<CallRequest, Identity>(request => new RateLimitPartition<Identity>(request.Caller, identity));
    }

    /// <summary>A lease to dispose when the call ends, or the failure that refuses the call.</summary>
    internal (IDisposable? Lease, CallFailure Failure, string? Error) Enter(CallRequest request)
    {
        var database = _databases.AttemptAcquire(request);
        if (!database.IsAcquired)
        {
            database.Dispose();
            ProcyonTelemetry.Refused(request.Database, ProcyonTelemetry.ShedReason.Database);
            return (null, CallFailure.Overloaded, $"database '{request.Database}' has {_options.Value.MaxCallsPerDatabase} calls in flight (Procyon:Runtime:MaxCallsPerDatabase); try again shortly");
        }
        var identity = _identities.AttemptAcquire(request);
        if (!identity.IsAcquired)
        {
            database.Dispose();
            identity.Dispose();
            var who = request.Caller == Identity.Anonymous ? "calls without a token" : "this identity";
            return (null, CallFailure.TooManyCalls, $"{who} already have {_options.Value.MaxCallsPerIdentity} calls in flight (Procyon:Runtime:MaxCallsPerIdentity); try again shortly");
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
