using System.Diagnostics;
using System.Text.Json;
using Microsoft.Extensions.Options;
using Npgsql;
using Procyon.Storage.Tables;
using Procyon.Sats;

namespace Procyon.Runtime;

/// <summary>Receives every call's result, whoever made the call (the SignalR hub publishes them).</summary>
public interface IResultSink
{
    /// <summary>Must not block: the caller is waiting for its response.</summary>
    void Publish(CallResult result);
}

/// <summary>
/// The one path of a call for HTTP, the hub and the scheduler: JSON arguments → BSATN → an
/// instance of the module → BSATN result → JSON, then the result goes to every sink.
/// </summary>
public sealed class CallDispatcher(ModuleRegistry registry, IEnumerable<IResultSink> sinks, NpgsqlDataSource dataSource, IOptions<RuntimeOptions> options)
{
    /// <summary>Runs of a reducer whose transaction Postgres could not serialize, before giving up (503).</summary>
    private const int ReducerAttempts = 20;

    private static readonly byte[] NoArguments = "[]"u8.ToArray();

    private readonly IResultSink[] _sinks = sinks.ToArray();
    private readonly SemaphoreSlim _slots = new(options.Value.MaxConcurrentCalls);
    private readonly SemaphoreSlim _transactions = new(options.Value.MaxConcurrentTransactions);
    private int _queued;

    /// <param name="cancellationToken">Ends sleeping calls early; pass the server's shutdown token, not a request's.</param>
    public async Task<CallResult> CallAsync(CallRequest request, CancellationToken cancellationToken)
    {
        var startedAt = DateTimeOffset.UtcNow;
        var started = Stopwatch.GetTimestamp();
        var (failure, value, error) = await RunAsync(request, UnixTime.ToMicros(startedAt), cancellationToken);
        return Complete(request, startedAt, started, failure, value, error);
    }

    /// <summary>
    /// Runs one due row of a scheduled table, if one is due: a reducer target in the same
    /// transaction that deletes (or advances) the row, exactly once; a procedure target under a
    /// lease, outside any transaction, at least once. Returns false when no row was due.
    /// </summary>
    public async Task<bool> RunScheduledAsync(LoadedModule module, TableSchema table, TimeSpan lease, CancellationToken cancellationToken)
    {
        var function = module.Description.Find(table.ScheduledFunction!)!;
        var caller = ModuleIdentity(module.Database);
        var startedAt = DateTimeOffset.UtcNow;
        var started = Stopwatch.GetTimestamp();
        var micros = UnixTime.ToMicros(startedAt);
        (byte[] Row, long ScheduledId)? claimed = null;
        InstanceOutcome? outcome;
        if (function.Kind == FunctionKind.Procedure)
        {
            await using (var transaction = await BeginAsync(cancellationToken))
            {
                claimed = await transaction.LeaseDueAsync(table, lease, cancellationToken);
                await transaction.CommitAsync(cancellationToken);
            }
            if (claimed is not { } leased)
            {
                return false;
            }
            outcome = await RunProcedureAsync(module, function, leased.Row, caller, micros, cancellationToken);
            await FinishAsync(table, leased.ScheduledId, fromDue: false, cancellationToken);
        }
        else
        {
            outcome = await RunReducerAsync(
                module,
                function,
                async (transaction, ct) =>
                {
                    claimed = await transaction.ClaimDueAsync(table, ct);
                    await transaction.SaveAsync(ct);
                    return claimed?.Row;
                },
                (transaction, ct) => transaction.FinishScheduledAsync(table, claimed!.Value.ScheduledId, fromDue: true, ct),
                caller,
                micros,
                cancellationToken,
                // A failing run is reported once, not retried forever: its writes are undone, the row moves on, still locked.
                async (transaction, ct) =>
                {
                    await transaction.RollbackToSavedAsync(ct);
                    await transaction.FinishScheduledAsync(table, claimed!.Value.ScheduledId, fromDue: true, ct);
                });
            if (outcome is null || claimed is null)
            {
                return false;
            }
        }
        var request = new CallRequest(module.Database, function.Name, ReadOnlyMemory<byte>.Empty, caller, CallOrigin.Schedule) { ScheduleId = (ulong)claimed.Value.ScheduledId };
        var (failure, value, error) = Finish(module, function, outcome!.Value);
        Complete(request, startedAt, started, failure, value, error);
        return true;
    }

    /// <summary>Scheduled runs are made by the module itself: an identity derived from the database name.</summary>
    public static Identity ModuleIdentity(string database) =>
        new(System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes("procyon module " + database)));

    private async Task FinishAsync(TableSchema table, long scheduledId, bool fromDue, CancellationToken cancellationToken)
    {
        await using var transaction = await BeginAsync(cancellationToken);
        await transaction.FinishScheduledAsync(table, scheduledId, fromDue, cancellationToken);
        await transaction.CommitAsync(cancellationToken);
    }

    private CallResult Complete(CallRequest request, DateTimeOffset startedAt, long started, CallFailure failure, JsonElement? value, string? error)
    {
        var result = new CallResult
        {
            RequestId = request.RequestId,
            Db = request.Database,
            Fn = request.Function,
            Origin = request.Origin,
            ScheduleId = request.ScheduleId,
            Status = failure switch
            {
                CallFailure.None => "ok",
                CallFailure.Timeout => "timeout",
                _ => "error",
            },
            Value = value,
            Error = error,
            StartedAt = startedAt,
            DurationMicros = (long)Stopwatch.GetElapsedTime(started).TotalMicroseconds,
            Caller = request.Caller.ToString(),
            Failure = failure,
        };
        foreach (var sink in _sinks)
        {
            sink.Publish(result);
        }
        return result;
    }

    private async Task<(CallFailure Failure, JsonElement? Value, string? Error)> RunAsync(CallRequest request, long timestampMicros, CancellationToken cancellationToken)
    {
        if (registry.Find(request.Database) is not { } module)
        {
            return (CallFailure.UnknownDatabase, null, $"no database named '{request.Database}' is published");
        }
        if (module.Description.Find(request.Function) is not { } function)
        {
            return (CallFailure.UnknownFunction, null, $"database '{request.Database}' has no function named '{request.Function}'");
        }
        var typespace = module.Description.Typespace;
        var arguments = new BsatnWriter();
        try
        {
            using var json = JsonDocument.Parse(request.ArgumentsJson.IsEmpty ? NoArguments : request.ArgumentsJson);
            JsonToBsatn.WriteArguments(json.RootElement, function.Parameters, typespace, arguments);
        }
        catch (JsonException e)
        {
            return (CallFailure.BadArguments, null, $"the arguments are not valid JSON: {e.Message}");
        }
        catch (ValueConversionException e)
        {
            return (CallFailure.BadArguments, null, e.Message);
        }
        if (function.Kind == FunctionKind.InitReducer && request.Origin != CallOrigin.Init)
        {
            return (CallFailure.BadArguments, null, $"'{request.Function}' is the init reducer; it runs only when the database is first published");
        }
        if (!await EnterAsync(cancellationToken))
        {
            return (CallFailure.Overloaded, null,
                $"the server is running {options.Value.MaxConcurrentCalls} calls and has {options.Value.MaxQueuedCalls} more waiting; try again shortly");
        }
        InstanceOutcome outcome;
        try
        {
            outcome = function.Kind == FunctionKind.Procedure
                ? await RunProcedureAsync(module, function, arguments.WrittenMemory, request.Caller, timestampMicros, cancellationToken)
                : (await RunReducerAsync(module, function, (_, _) => Task.FromResult<byte[]?>(arguments.WrittenSpan.ToArray()), null, request.Caller, timestampMicros, cancellationToken))!.Value;
        }
        finally
        {
            _slots.Release();
        }
        return Finish(module, function, outcome);
    }

    private static (CallFailure Failure, JsonElement? Value, string? Error) Finish(LoadedModule module, FunctionDescription function, InstanceOutcome outcome)
    {
        if (outcome.Failure != CallFailure.None)
        {
            return (outcome.Failure, null, outcome.Error);
        }
        var typespace = module.Description.Typespace;
        try
        {
            var value = BsatnToJson.Convert(outcome.Output, function.ReturnType, typespace);
            return (CallFailure.None, JsonSerializer.Deserialize<JsonElement>(value), null);
        }
        catch (InvalidDataException e)
        {
            return (CallFailure.Trapped, null, $"the module returned bytes that are not a {typespace.Describe(function.ReturnType)}: {e.Message}");
        }
    }

    private async Task<InstanceOutcome> RunProcedureAsync(LoadedModule module, FunctionDescription function, ReadOnlyMemory<byte> arguments, Identity caller, long timestampMicros, CancellationToken cancellationToken)
    {
        var context = new CallContext(module.Tables, BeginAsync, isReducer: false, cancellationToken);
        try
        {
            return await RunOnInstanceAsync(module, function, arguments, caller, timestampMicros, context);
        }
        finally
        {
            // A procedure that trapped inside with_tx leaves its transaction open: roll it back.
            if (context.Transaction is { } abandoned)
            {
                await abandoned.DisposeAsync();
            }
        }
    }

    /// <summary>
    /// Runs a reducer in one serializable transaction: committed when it returns <c>Ok</c>, rolled
    /// back on <c>Err</c> or a trap, and run again when Postgres cannot serialize it.
    /// </summary>
    /// <param name="arguments">Reads the arguments inside the transaction (a scheduled run claims its row there); null means nothing to run.</param>
    /// <param name="beforeCommit">Runs in the transaction after the reducer succeeded (a scheduled run deletes or advances its row).</param>
    private async Task<InstanceOutcome?> RunReducerAsync(
        LoadedModule module,
        FunctionDescription function,
        Func<DatabaseTransaction, CancellationToken, Task<byte[]?>> arguments,
        Func<DatabaseTransaction, CancellationToken, Task>? beforeCommit,
        Identity caller,
        long timestampMicros,
        CancellationToken cancellationToken,
        Func<DatabaseTransaction, CancellationToken, Task>? afterFailure = null)
    {
        for (var attempt = 1; ; attempt++)
        {
            var context = new CallContext(module.Tables, BeginAsync, isReducer: true, cancellationToken);
            await using var transaction = context.Transaction = await BeginAsync(cancellationToken);
            InstanceOutcome outcome;
            try
            {
                if (await arguments(transaction, cancellationToken) is not { } bytes)
                {
                    return null;
                }
                outcome = await RunOnInstanceAsync(module, function, bytes, caller, timestampMicros, context);
                if (outcome.Failure == CallFailure.None)
                {
                    if (beforeCommit is not null)
                    {
                        await beforeCommit(transaction, cancellationToken);
                    }
                    await transaction.CommitAsync(cancellationToken);
                    return outcome;
                }
                if (outcome.Failure != CallFailure.Contention && afterFailure is not null)
                {
                    await afterFailure(transaction, cancellationToken);
                    await transaction.CommitAsync(cancellationToken);
                    return outcome;
                }
            }
            catch (SerializationFailureException e)
            {
                outcome = InstanceOutcome.Failed(CallFailure.Contention, e.Message);
            }
            if (outcome.Failure != CallFailure.Contention || attempt == ReducerAttempts)
            {
                return outcome.Failure == CallFailure.Contention
                    ? InstanceOutcome.Failed(CallFailure.Contention, $"{outcome.Error} ({ReducerAttempts} attempts)")
                    : outcome;
            }
            // Random backoff, growing with each attempt, so the transactions that collided spread out.
            await Task.Delay(Random.Shared.Next(1, 1 << Math.Min(attempt + 2, 8)), cancellationToken);
        }
    }

    private static async Task<InstanceOutcome> RunOnInstanceAsync(LoadedModule module, FunctionDescription function, ReadOnlyMemory<byte> arguments, Identity caller, long timestampMicros, CallContext context)
    {
        var instance = module.Rent();
        try
        {
            return await instance.RunAsync(function.Id, arguments, caller, timestampMicros, context);
        }
        finally
        {
            module.Return(instance);
        }
    }

    /// <summary>Opens a transaction once one of <see cref="RuntimeOptions.MaxConcurrentTransactions"/> is free; disposing it frees the slot.</summary>
    private async Task<DatabaseTransaction> BeginAsync(CancellationToken cancellationToken)
    {
        await _transactions.WaitAsync(cancellationToken);
        try
        {
            return await DatabaseTransaction.BeginAsync(dataSource, () => _transactions.Release(), cancellationToken);
        }
        catch
        {
            _transactions.Release();
            throw;
        }
    }

    /// <summary>Takes a running slot, waiting in the bounded queue if need be; false when the queue is full.</summary>
    private async ValueTask<bool> EnterAsync(CancellationToken cancellationToken)
    {
        if (_slots.Wait(0))
        {
            return true;
        }
        if (Interlocked.Increment(ref _queued) > options.Value.MaxQueuedCalls)
        {
            Interlocked.Decrement(ref _queued);
            return false;
        }
        try
        {
            await _slots.WaitAsync(cancellationToken);
            return true;
        }
        finally
        {
            Interlocked.Decrement(ref _queued);
        }
    }
}
