using System.Collections.Concurrent;
using System.Collections.Immutable;
using Microsoft.AspNetCore.SignalR;
using Microsoft.AspNetCore.SignalR.Protocol;
using Procyon.Runtime;

namespace Procyon.Server.Hub;

/// <summary>Something on this server that receives the results of a database: a hub connection's subscriptions or a <c>Results</c> stream.</summary>
internal interface IResultListener
{
    /// <summary>The listener's identity (hex), or null without a token: it receives only the results it may see.</summary>
    string? Viewer { get; }

    bool Wants(string db, string fn);

    /// <summary>Must not wait: every other listener of the result is behind this one.</summary>
    void Offer(Delivery delivery);
}

/// <summary>The listeners of this server by database, so a result of a database nobody listens to costs nothing.</summary>
internal sealed class ResultListeners
{
    private readonly Lock _lock = new();
    private readonly ConcurrentDictionary<string, ImmutableArray<IResultListener>> _byDatabase = new(StringComparer.Ordinal);

    public bool Listens(string db) => _byDatabase.ContainsKey(db);

    public void Add(string db, IResultListener listener)
    {
        lock (_lock)
        {
            _byDatabase[db] = _byDatabase.TryGetValue(db, out var listeners) ? listeners.Add(listener) : [listener];
        }
        Telemetry.HubTelemetry.Listening(db, 1);
    }

    public void Remove(string db, IResultListener listener)
    {
        lock (_lock)
        {
            if (!_byDatabase.TryGetValue(db, out var listeners))
            {
                return;
            }
            var left = listeners.Remove(listener);
            if (left.Length == listeners.Length)
            {
                return;
            }
            Telemetry.HubTelemetry.Listening(db, -1);
            if (left.IsEmpty)
            {
                _byDatabase.TryRemove(db, out _);
            }
            else
            {
                _byDatabase[db] = left;
            }
        }
    }

    /// <summary>Hands the result to every listener of its database that wants it and may see it, without waiting for any.</summary>
    public void Deliver(CallResult result)
    {
        if (!_byDatabase.TryGetValue(result.Db, out var listeners))
        {
            return;
        }
        var delivery = new Delivery(result);
        foreach (var listener in listeners)
        {
            if (listener.Wants(result.Db, result.Fn) && result.Audience.Includes(listener.Viewer))
            {
                listener.Offer(delivery);
            }
        }
    }
}

/// <summary>A result on its way to this server's listeners: serialized at most once per protocol for all connections, its size estimated once.</summary>
internal sealed class Delivery(CallResult result)
{
    /// <summary>What a result's fields besides its value, error and request id take in JSON, about.</summary>
    private const int Envelope = 512;

    public CallResult Result { get; } = result;

    public SerializedHubMessage Message { get; } = new(new InvocationMessage(nameof(IProcyonClient.Result), [result]));

    /// <summary>About the bytes the result takes on the wire.</summary>
    public long Size { get; } = Envelope
        + (result.Value?.Utf8.Length ?? 0)
        + (result.Error?.Length ?? 0)
        + (result.RequestId?.Length ?? 0);
}
