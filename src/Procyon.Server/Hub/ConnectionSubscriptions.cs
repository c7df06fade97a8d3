using System.Collections.Immutable;

namespace Procyon.Server.Hub;

/// <summary>
/// What one hub connection subscribed to. A subscription to a database covers all its
/// functions, so a result reaches the connection's outbox once however many cover it.
/// </summary>
internal sealed class ConnectionSubscriptions(ResultListeners listeners, ConnectionOutbox outbox, string? viewer) : IResultListener
{
    private readonly Lock _lock = new();

    /// <summary>Per database: null for all its functions, else the functions subscribed to. Replaced whole, so delivery reads it without the lock.</summary>
    private ImmutableDictionary<string, ImmutableHashSet<string>?> _databases = ImmutableDictionary.Create<string, ImmutableHashSet<string>?>(StringComparer.Ordinal);

    public string? Viewer => viewer;

    public bool Wants(string db, string fn) => _databases.TryGetValue(db, out var functions) && (functions is null || functions.Contains(fn));

    public void Offer(Delivery delivery) => outbox.Enqueue(delivery);

    public void Subscribe(string db, string? fn)
    {
        lock (_lock)
        {
            var known = _databases.TryGetValue(db, out var functions);
            if (known && functions is null)
            {
                return;
            }
            _databases = _databases.SetItem(db, fn is null ? null : (functions ?? []).Add(fn));
            if (!known)
            {
                listeners.Add(db, this);
            }
        }
    }

    /// <summary>Without <paramref name="fn"/>, ends every subscription to the database; a function of a database subscribed whole stays covered.</summary>
    public void Unsubscribe(string db, string? fn)
    {
        lock (_lock)
        {
            if (!_databases.TryGetValue(db, out var functions) || (fn is not null && functions is null))
            {
                return;
            }
            var left = fn is null ? [] : functions!.Remove(fn);
            if (left.IsEmpty)
            {
                _databases = _databases.Remove(db);
                listeners.Remove(db, this);
            }
            else
            {
                _databases = _databases.SetItem(db, left);
            }
        }
    }

    /// <summary>The connection ended.</summary>
    public void Clear()
    {
        lock (_lock)
        {
            foreach (var db in _databases.Keys)
            {
                listeners.Remove(db, this);
            }
            _databases = _databases.Clear();
        }
    }
}
