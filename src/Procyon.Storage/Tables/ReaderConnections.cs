using Microsoft.Extensions.Options;
using Npgsql;

namespace Procyon.Storage.Tables;

/// <summary>
/// The SQL endpoint's Postgres sessions: one pooled data source per database and kind of reader,
/// running at most <see cref="ReaderConnectionOptions.SqlConnectionsPerDatabase"/> queries, and at
/// most <see cref="ReaderConnectionOptions.SqlMaxConnections"/> sessions in all, idle ones included
/// (counting only busy ones would let a walk over many databases leave idle sessions behind in
/// each). A pool opens a session only when all of its own are busy, so it holds at most as many as
/// it ever had leased at once since it was last cleared: that is what is counted. When the count
/// is full, the least recently used idle pool is closed to make room; when none is idle, the query
/// is refused. Npgsql also closes sessions idle for longer than <see cref="ReaderConnectionOptions.SqlIdleLifetime"/>.
/// </summary>
public sealed class ReaderConnections(NpgsqlDataSource server, IOptions<ReaderConnectionOptions> options) : IDisposable
{
    private readonly Lock _gate = new();
    private readonly Dictionary<(string Database, SqlReader Reader), ReaderPool> _pools = [];

    /// <summary>Sessions the pools may hold: never fewer than they do hold.</summary>
    private int _sessions;

    /// <summary>
    /// A slot for one query on the pool of <paramref name="database"/> for <paramref name="reader"/>,
    /// whose role's password is <paramref name="password"/>: a pool made with another one is closed
    /// (the database was deleted and published again). Throws <see cref="OverloadedException"/>
    /// when either limit is reached.
    /// </summary>
    public ReaderLease Lease(string database, SqlReader reader, string password)
    {
        var limits = options.Value;
        lock (_gate)
        {
            var key = (database, reader);
            if (_pools.TryGetValue(key, out var pool) && pool.Password != password)
            {
                Retire(key, pool);
                pool = null;
            }
            if (pool is not null && pool.Leased >= limits.SqlConnectionsPerDatabase)
            {
                throw new OverloadedException(
                    $"database '{database}' already runs {pool.Leased} SQL queries for {(reader == SqlReader.Owner ? "its owner" : "readers without the owner's token")} (Procyon:Api:SqlConnectionsPerDatabase): try again shortly");
            }
            if (pool is null || pool.Leased == pool.Sessions)
            {
                if (_sessions >= limits.SqlMaxConnections && !CloseIdlest())
                {
                    throw new OverloadedException($"the server's {_sessions} SQL sessions are all busy (Procyon:Api:SqlMaxConnections): try again shortly");
                }
                pool ??= _pools[key] = new ReaderPool(Create(database, reader, password), password);
                pool.Sessions++;
                _sessions++;
            }
            pool.Leased++;
            pool.LastUsed = Environment.TickCount64;
            return new ReaderLease(this, pool);
        }
    }

    /// <summary>Closes the pools of a deleted database.</summary>
    public void Forget(string database)
    {
        lock (_gate)
        {
            foreach (var reader in Enum.GetValues<SqlReader>())
            {
                if (_pools.TryGetValue((database, reader), out var pool))
                {
                    Retire((database, reader), pool);
                }
            }
        }
    }

    public void Dispose()
    {
        lock (_gate)
        {
            foreach (var pool in _pools.Values)
            {
                pool.DataSource.Dispose();
            }
            _pools.Clear();
        }
    }

    internal void Release(ReaderPool pool)
    {
        lock (_gate)
        {
            pool.Leased--;
            if (!pool.Retired)
            {
                return;
            }
            pool.Sessions--;
            _sessions--;
            if (pool.Leased == 0)
            {
                pool.DataSource.Dispose();
            }
        }
    }

    /// <summary>Closes the idle pool used longest ago, if any, and frees its sessions.</summary>
    private bool CloseIdlest()
    {
        var idlest = _pools.Where(p => p.Value.Leased == 0).OrderBy(p => p.Value.LastUsed).FirstOrDefault();
        if (idlest.Value is null)
        {
            return false;
        }
        Retire(idlest.Key, idlest.Value);
        return true;
    }

    /// <summary>
    /// Takes a pool out of use: its idle sessions close now, its busy ones when their queries end
    /// (Npgsql closes what returns to a cleared pool), and each stays counted until then.
    /// </summary>
    private void Retire((string, SqlReader) key, ReaderPool pool)
    {
        _pools.Remove(key);
        pool.Retired = true;
        _sessions -= pool.Sessions - pool.Leased;
        pool.Sessions = pool.Leased;
        if (pool.Leased == 0)
        {
            pool.DataSource.Dispose();
        }
        else
        {
            pool.DataSource.Clear();
        }
    }

    private NpgsqlDataSource Create(string database, SqlReader reader, string password)
    {
        var idleSeconds = (int)options.Value.SqlIdleLifetime.TotalSeconds;
        return NpgsqlDataSource.Create(new NpgsqlConnectionStringBuilder(server.ConnectionString)
        {
            Username = Sql.ReaderRoleOf(server, database, reader),
            Password = password,
            Pooling = true,
            MinPoolSize = 0,
            MaxPoolSize = options.Value.SqlConnectionsPerDatabase,
            ConnectionIdleLifetime = idleSeconds,
            // Npgsql looks for idle sessions this often; it may not exceed the lifetime.
            ConnectionPruningInterval = Math.Min(10, idleSeconds),
        });
    }
}

/// <summary>One database's pool for one kind of reader, and what <see cref="ReaderConnections"/> counts of it.</summary>
internal sealed class ReaderPool(NpgsqlDataSource dataSource, string password)
{
    public NpgsqlDataSource DataSource { get; } = dataSource;

    public string Password { get; } = password;

    /// <summary>Sessions the pool may hold.</summary>
    public int Sessions { get; set; }

    /// <summary>Queries running on it.</summary>
    public int Leased { get; set; }

    public long LastUsed { get; set; }

    public bool Retired { get; set; }
}

/// <summary>The right to run one query on a reader pool; dispose it after the connection.</summary>
public sealed class ReaderLease : IDisposable
{
    private readonly ReaderConnections _owner;
    private readonly ReaderPool _pool;
    private bool _released;

    internal ReaderLease(ReaderConnections owner, ReaderPool pool)
    {
        _owner = owner;
        _pool = pool;
    }

    public async Task<NpgsqlConnection> OpenAsync(CancellationToken cancellationToken)
    {
        try
        {
            return await _pool.DataSource.OpenConnectionAsync(cancellationToken);
        }
        catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.TooManyConnections)
        {
            // Other replicas and the server's own pool share max_connections and the role's limit.
            throw new OverloadedException($"Postgres takes no more sessions for this reader ({e.MessageText}): try again shortly");
        }
    }

    public void Dispose()
    {
        if (!_released)
        {
            _released = true;
            _owner.Release(_pool);
        }
    }
}
