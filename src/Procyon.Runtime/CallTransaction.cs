using System.Threading.RateLimiting;
using Microsoft.Extensions.Options;
using Npgsql;
using Procyon.Storage.Tables;

namespace Procyon.Runtime;

/// <summary>A call's transaction outlived <see cref="RuntimeOptions.TransactionTimeout"/> and was rolled back (504).</summary>
internal sealed class TransactionTimeoutException(TimeSpan limit)
    : Exception($"the transaction ran longer than Procyon:Runtime:TransactionTimeout ({limit.TotalSeconds:0.###} s) and was rolled back");

/// <summary>Postgres failed the host, not the module (a lost connection, a restart): the call can be tried again (503).</summary>
internal sealed class DatabaseUnavailableException(Exception inner) : Exception($"the database is unavailable: {inner.Message}", inner);

/// <summary>No transaction slot (of the server's, or of the database's share) freed within <see cref="RuntimeOptions.TransactionSlotWait"/> (503).</summary>
internal sealed class TransactionSlotsBusyException(string slots, TimeSpan waited)
    : Exception($"{slots} stayed busy for {waited.TotalSeconds:0.###} s; try again shortly");

/// <summary>
/// The transactions of this server's calls: the slots they take (<see cref="RuntimeOptions.MaxConcurrentTransactions"/>,
/// waited for at most <see cref="RuntimeOptions.TransactionSlotWait"/>) and how a reducer's runs are
/// retried when Postgres cannot serialize them, and given up.
/// </summary>
public sealed class Transactions(NpgsqlDataSource dataSource, IOptions<RuntimeOptions> options) : IDisposable
{
    /// <summary>Runs of a reducer whose transaction Postgres could not serialize, before giving up (503).</summary>
    private const int ReducerAttempts = 20;

    private readonly SemaphoreSlim _slots = new(options.Value.MaxConcurrentTransactions);

    /// <summary>Each database's share of the slots, so one database's transactions cannot take them all.</summary>
    private readonly PartitionedRateLimiter<string> _perDatabase = PartitionedRateLimiter.Create<string, string>(database =>
        RateLimitPartition.GetConcurrencyLimiter(database, _ => new ConcurrencyLimiterOptions
        {
            PermitLimit = options.Value.MaxTransactionsPerDatabase,
            QueueLimit = options.Value.MaxConcurrentCalls,
            QueueProcessingOrder = QueueProcessingOrder.OldestFirst,
        }));

    internal RuntimeOptions Options => options.Value;

    /// <summary>A procedure's transactions in <paramref name="database"/>: it opens and ends them itself with <c>with_tx</c>.</summary>
    internal CallTransaction ForProcedure(string database, CancellationToken cancellationToken) => new(this, database, isReducer: false, cancellationToken);

    /// <summary>A reducer's runs over a transaction the host already holds (a publish's, a batch of scheduled rows').</summary>
    internal CallTransaction Within(string database, DatabaseTransaction transaction, CancellationToken cancellationToken) =>
        new(this, database, isReducer: true, cancellationToken, transaction);

    /// <summary>
    /// Runs a reducer in a transaction of its own: committed when it returns <c>Ok</c>, rolled back
    /// on <c>Err</c>, a trap or the deadline, and run again when Postgres cannot serialize it.
    /// </summary>
    internal async Task<InstanceOutcome> RunReducerAsync(string database, Func<CallTransaction, Task<InstanceOutcome>> run, CancellationToken cancellationToken)
    {
        for (var attempt = 1; ; attempt++)
        {
            InstanceOutcome outcome;
            await using (var transaction = new CallTransaction(this, database, isReducer: true, cancellationToken))
            {
                try
                {
                    await transaction.OpenAsync();
                    outcome = await run(transaction);
                    if (outcome.Failure == CallFailure.None)
                    {
                        await transaction.CommitAsync();
                        return outcome;
                    }
                }
                catch (Exception e) when (CallTransaction.Outcome(e, isReducer: true) is { } failed)
                {
                    outcome = failed;
                }
            }
            if (outcome.Failure != CallFailure.Contention || attempt == ReducerAttempts)
            {
                return outcome.Failure == CallFailure.Contention
                    ? InstanceOutcome.Failed(CallFailure.Contention, $"{outcome.Error} ({ReducerAttempts} attempts)")
                    : outcome;
            }
            await BackoffAsync(database, attempt, cancellationToken);
        }
    }

    /// <summary>
    /// Opens a serializable transaction in <paramref name="database"/> once a slot of the server's
    /// and one of the database's share are free; disposing it frees both. Throws
    /// <see cref="TransactionSlotsBusyException"/> after <see cref="RuntimeOptions.TransactionSlotWait"/>.
    /// </summary>
    public async Task<DatabaseTransaction> BeginAsync(string database, CancellationToken cancellationToken)
    {
        using var wait = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        wait.CancelAfter(Options.TransactionSlotWait);
        RateLimitLease? share = null;
        try
        {
            share = await _perDatabase.AcquireAsync(database, 1, wait.Token);
            if (!share.IsAcquired)
            {
                throw Busy(database, share);
            }
            await _slots.WaitAsync(wait.Token);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            share?.Dispose();
            throw Busy(database, share);
        }
        catch
        {
            share?.Dispose();
            throw;
        }
        ProcyonTelemetry.TransactionsOpen(database, 1);
        var released = 0;
        void Release()
        {
            if (Interlocked.Exchange(ref released, 1) == 0)
            {
                _slots.Release();
                share.Dispose();
                ProcyonTelemetry.TransactionsOpen(database, -1);
            }
        }
        try
        {
            // Postgres ends what the host's deadline somehow misses: a statement longer than the
            // whole transaction may take, or a session left idle in it past the deadline and a
            // CPU deadline's worth of module work.
            return await DatabaseTransaction.BeginAsync(dataSource, Release, Options.TransactionTimeout, Options.TransactionTimeout + Options.CallTimeout, cancellationToken);
        }
        catch
        {
            Release();
            throw;
        }
    }

    /// <summary>Which slots stayed busy: the database's share (not acquired) or the server's; the call is shed.</summary>
    private TransactionSlotsBusyException Busy(string database, RateLimitLease? share)
    {
        ProcyonTelemetry.Refused(database, ProcyonTelemetry.ShedReason.Transactions);
        return new(
            share is { IsAcquired: true }
                ? $"all {Options.MaxConcurrentTransactions} transaction slots of the server (Procyon:Runtime:MaxConcurrentTransactions)"
                : $"the {Options.MaxTransactionsPerDatabase} transaction slots of database '{database}' (Procyon:Runtime:MaxTransactionsPerDatabase)",
            Options.TransactionSlotWait);
    }

    /// <summary>
    /// Before a transaction of <paramref name="database"/> that Postgres could not serialize runs
    /// again: a random backoff, growing with each attempt, so the transactions that collided spread out.
    /// </summary>
    internal static Task BackoffAsync(string database, int attempt, CancellationToken cancellationToken)
    {
        ProcyonTelemetry.Retried(database);
        return Task.Delay(Random.Shared.Next(1, 1 << Math.Min(attempt + 2, 8)), cancellationToken);
    }

    public void Dispose()
    {
        _slots.Dispose();
        _perDatabase.Dispose();
    }
}

/// <summary>
/// The one owner of a call's transaction: opens it (a reducer's, by the host; a procedure's, by
/// <c>with_tx</c>), runs table operations in it within the deadline, and ends it. The deadline
/// (<see cref="RuntimeOptions.TransactionTimeout"/>) counts from the transaction's start and
/// includes the time table calls take, so a module cannot hold a transaction by calling tables
/// in a loop (its CPU deadline starts over after each call).
/// </summary>
internal sealed class CallTransaction : IAsyncDisposable
{
    /// <summary>Postgres ended the session for idling in a transaction too long (SQLSTATE 25P03).</summary>
    private const string IdleInTransactionSessionTimeout = "25P03";

    private readonly Transactions _transactions;
    private readonly string _database;
    private readonly CancellationToken _callToken;

    /// <summary>A transaction the host holds for the caller of <see cref="Transactions.Within"/>, which ends it.</summary>
    private readonly DatabaseTransaction? _borrowed;

    private DatabaseTransaction? _open;
    private CancellationTokenSource? _deadline;

    internal CallTransaction(Transactions transactions, string database, bool isReducer, CancellationToken callToken, DatabaseTransaction? borrowed = null)
    {
        _transactions = transactions;
        _database = database;
        IsReducer = isReducer;
        _callToken = callToken;
        _borrowed = borrowed;
        if (borrowed is not null)
        {
            Start(borrowed);
        }
    }

    /// <summary>A reducer's transaction belongs to the host; a procedure opens its own with <c>with_tx</c>.</summary>
    public bool IsReducer { get; }

    /// <summary>Whether a transaction is open, during which the call may not sleep.</summary>
    public bool IsOpen => _open is not null;

    /// <summary>The call's cancellation (the server stopping): for what the call awaits outside transactions.</summary>
    public CancellationToken CallToken => _callToken;

    /// <summary>The host opens a reducer's transaction before running it.</summary>
    public async Task OpenAsync() => Start(await GuardAsync(() => _transactions.BeginAsync(_database, _callToken)));

    /// <summary><c>tx_begin</c>: a procedure's <c>with_tx</c> opens its transaction.</summary>
    public async Task<long> BeginByModuleAsync()
    {
        if (IsReducer || IsOpen)
        {
            throw new GuestFaultException("a transaction is already open; with_tx cannot nest or run inside a reducer");
        }
        await OpenAsync();
        return 0;
    }

    /// <summary><c>tx_commit</c> and <c>tx_rollback</c>: 0, or <see cref="ModuleAbi.TxRetry"/> when Postgres could not serialize the commit.</summary>
    public async Task<long> EndByModuleAsync(bool commit)
    {
        if (IsReducer || _open is null)
        {
            throw new GuestFaultException("no transaction of the procedure's is open");
        }
        try
        {
            if (commit)
            {
                await CommitAsync();
            }
            return 0;
        }
        catch (SerializationFailureException)
        {
            // The closure finished with real answers; the SDK runs it again.
            ProcyonTelemetry.Retried(_database);
            return ModuleAbi.TxRetry;
        }
        finally
        {
            await CloseAsync();
        }
    }

    /// <summary>An operation on <paramref name="table"/> in the open transaction, within the deadline.</summary>
    public Task<T> RunAsync<T>(string table, Func<DatabaseTransaction, CancellationToken, Task<T>> operation)
    {
        var open = _open ?? throw new GuestFaultException($"table {table} was used outside a transaction: in a procedure, use ctx.with_tx");
        return GuardAsync(() => operation(open, _deadline!.Token));
    }

    /// <summary>An operation without a result (a savepoint, say) in the open transaction, within the deadline.</summary>
    public Task RunAsync(string table, Func<DatabaseTransaction, CancellationToken, Task> operation) =>
        RunAsync(table, async (transaction, token) =>
        {
            await operation(transaction, token);
            return true;
        });

    /// <summary><c>table_close</c>: a dropped iterator's cursor closes with the next statement; nothing to do outside a transaction.</summary>
    public void CloseCursor(int cursor) => _open?.CloseCursor(cursor);

    /// <summary>Commits the open transaction, in a span of its own under the call's when someone listens.</summary>
    public Task CommitAsync() => GuardAsync(async () =>
    {
        using var span = ProcyonTelemetry.StartCommit(_database);
        await _open!.CommitAsync(_deadline!.Token);
        return true;
    });

    /// <summary>Ends an open transaction the call abandoned (a trap inside with_tx): rolled back with the connection.</summary>
    public ValueTask DisposeAsync() => new(CloseAsync());

    /// <summary>
    /// The outcome a failure of the host's side of a call comes to, or null when it is not one:
    /// the deadline (504), Postgres unavailable (503), a reducer's serialization failure (run it
    /// again), or a procedure's in the middle of with_tx (503: the closure cannot be stopped and
    /// must not go on with made-up answers).
    /// </summary>
    public static InstanceOutcome? Outcome(Exception e, bool isReducer) => e switch
    {
        TransactionTimeoutException => InstanceOutcome.Failed(CallFailure.TransactionTimeout, e.Message),
        DatabaseUnavailableException => InstanceOutcome.Failed(CallFailure.Unavailable, e.Message),
        TransactionSlotsBusyException => InstanceOutcome.Failed(CallFailure.Overloaded, e.Message),
        SerializationFailureException when isReducer => InstanceOutcome.Failed(CallFailure.Contention, e.Message),
        SerializationFailureException => InstanceOutcome.Failed(
            CallFailure.Contention,
            $"{e.Message}; with_tx's transaction was rolled back and the call abandoned, so nothing it wrote remains: try again"),
        _ => null,
    };

    private void Start(DatabaseTransaction transaction)
    {
        _open = transaction;
        _deadline = CancellationTokenSource.CreateLinkedTokenSource(_callToken);
        _deadline.CancelAfter(_transactions.Options.TransactionTimeout);
    }

    private async Task CloseAsync()
    {
        if (_open is { } open && open != _borrowed)
        {
            await open.DisposeAsync();
        }
        _open = null;
        _deadline?.Dispose();
        _deadline = null;
    }

    /// <summary>Turns what Postgres and Npgsql throw into the failures the call reports.</summary>
    private async Task<T> GuardAsync<T>(Func<Task<T>> operation)
    {
        try
        {
            return await operation();
        }
        catch (Exception e) when (IsDeadline(e))
        {
            throw new TransactionTimeoutException(_transactions.Options.TransactionTimeout);
        }
        catch (NpgsqlException e) when (e.IsTransient || e is not PostgresException)
        {
            throw new DatabaseUnavailableException(e);
        }
    }

    private bool IsDeadline(Exception e) =>
        !_callToken.IsCancellationRequested && (
            (e is OperationCanceledException && _deadline?.IsCancellationRequested == true)
            || e is PostgresException { SqlState: PostgresErrorCodes.QueryCanceled or IdleInTransactionSessionTimeout });
}
