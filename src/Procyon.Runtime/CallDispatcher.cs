using System.Diagnostics;
using System.Text.Json;
using Microsoft.Extensions.Options;
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
public sealed class CallDispatcher(ModuleRegistry registry, IEnumerable<IResultSink> sinks, IOptions<RuntimeOptions> options)
{
    private static readonly byte[] NoArguments = "[]"u8.ToArray();

    private readonly IResultSink[] _sinks = sinks.ToArray();
    private readonly SemaphoreSlim _slots = new(options.Value.MaxConcurrentCalls);
    private int _queued;

    /// <param name="cancellationToken">Ends sleeping calls early; pass the server's shutdown token, not a request's.</param>
    public async Task<CallResult> CallAsync(CallRequest request, CancellationToken cancellationToken)
    {
        var startedAt = DateTimeOffset.UtcNow;
        var started = Stopwatch.GetTimestamp();
        var (failure, value, error) = await RunAsync(request, UnixTime.ToMicros(startedAt), cancellationToken);
        var result = new CallResult
        {
            RequestId = request.RequestId,
            Db = request.Database,
            Fn = request.Function,
            Origin = request.Origin,
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
        if (!await EnterAsync(cancellationToken))
        {
            return (CallFailure.Overloaded, null,
                $"the server is running {options.Value.MaxConcurrentCalls} calls and has {options.Value.MaxQueuedCalls} more waiting; try again shortly");
        }
        InstanceOutcome outcome;
        try
        {
            var instance = module.Rent();
            try
            {
                outcome = await instance.RunAsync(function.Id, arguments.WrittenMemory, request.Caller, timestampMicros, cancellationToken);
            }
            finally
            {
                module.Return(instance);
            }
        }
        finally
        {
            _slots.Release();
        }
        if (outcome.Failure != CallFailure.None)
        {
            return (outcome.Failure, null, outcome.Error);
        }
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
