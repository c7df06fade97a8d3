using System.Buffers;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Procyon.Runtime;
using Procyon.Storage;

namespace Procyon.Server.Api;

/// <summary>
/// Calls whose end is kept at <c>GET /v1/calls/{id}</c> however they ran: made with
/// <c>Prefer: respond-async</c> (RFC 7240), answered 202 at once, or with an <c>Idempotency-Key</c>
/// (the IETF httpapi draft), run once per caller, database and key.
/// </summary>
internal static class KeptCalls
{
    public const string IdempotencyKeyHeader = "Idempotency-Key";

    private const int MaxKeyLength = 255;

    private static readonly TimeSpan PollInterval = TimeSpan.FromMilliseconds(100);

    /// <summary>Whether the request's <c>Prefer</c> header asks for <c>respond-async</c>.</summary>
    public static bool PrefersAsync(HttpRequest request) =>
        request.Headers["Prefer"].Any(value => value is not null && value.Split(',').Any(preference =>
            preference.Split(';')[0].Trim().Equals("respond-async", StringComparison.OrdinalIgnoreCase)));

    /// <summary>Why a call cannot be kept, before anything is: a bad key, or a function that is not there.</summary>
    public static (CallFailure Failure, string Detail)? Refusal(string db, string fn, string? key, ModuleRegistry registry)
    {
        if (key is not null && (key.Length is 0 or > MaxKeyLength || key.Any(char.IsControl)))
        {
            return (CallFailure.BadArguments, $"the idempotency key must be 1 to {MaxKeyLength} printable characters");
        }
        var module = registry.Find(db);
        return CallDispatcher.Missing(db, fn, module, module?.Description.Find(fn));
    }

    /// <summary>The detail of a retry that asks something else than the call holding its key.</summary>
    public static string Reused(StoredCall call) =>
        $"the idempotency key was used for another request (another function or other arguments): call {call.Id}";

    /// <summary>Waits until a kept call has ended (as long as the caller waits) and returns it so.</summary>
    public static async Task<StoredCall> EndedAsync(StoredCall call, DurableCalls calls, CancellationToken cancellationToken)
    {
        while (call.InFlight)
        {
            await Task.Delay(PollInterval, cancellationToken);
            call = await calls.FindAsync(call.Id, cancellationToken) ?? call with { Status = "error", Error = "the call was forgotten", Failure = nameof(CallFailure.Unavailable) };
        }
        return call;
    }

    /// <summary>How a kept call failed, as the runtime names it.</summary>
    public static CallFailure FailureOf(StoredCall call) =>
        Enum.TryParse<CallFailure>(call.Failure, out var failure) && failure != CallFailure.None ? failure : CallFailure.Trapped;

    /// <summary>
    /// What an idempotency key is bound to: the function and the arguments as compact JSON (so
    /// whitespace, and HTTP or the hub, make no difference; the order of named arguments does).
    /// </summary>
    public static string RequestSha256(string fn, ReadOnlyMemory<byte> body)
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        hash.AppendData(Encoding.UTF8.GetBytes(fn + "\n"));
        hash.AppendData(Compact(body).Span);
        return Convert.ToHexStringLower(hash.GetHashAndReset());
    }

    /// <summary>The JSON without insignificant whitespace; bytes that are not JSON as they are (the call fails on them anyway).</summary>
    private static ReadOnlyMemory<byte> Compact(ReadOnlyMemory<byte> body)
    {
        try
        {
            using var document = JsonDocument.Parse(body, Sats.ValueLimits.DocumentOptions);
            var buffer = new ArrayBufferWriter<byte>(body.Length);
            using (var writer = new Utf8JsonWriter(buffer))
            {
                document.WriteTo(writer);
            }
            return buffer.WrittenMemory;
        }
        catch (JsonException)
        {
            return body;
        }
    }

    public static IResult Accepted(Guid id, string status) =>
        TypedResults.Accepted($"/v1/calls/{id}", new Dictionary<string, object> { ["id"] = id, ["status"] = status });

    /// <summary>
    /// A retry of a call that holds its key: 422 if it asks something else; 202 with its id when
    /// asked to answer at once; else its result, once it has one (waiting as long as the caller does).
    /// </summary>
    public static async Task<IResult> AnswerAsync(StoredCall call, string requestSha256, bool respondAsync, DurableCalls calls, HttpContext context)
    {
        if (call.RequestSha256 != requestSha256)
        {
            return TypedResults.Problem(
                Reused(call),
                statusCode: StatusCodes.Status422UnprocessableEntity,
                title: "Idempotency key reused",
                extensions: new Dictionary<string, object?> { ["db"] = call.Database, ["fn"] = call.Function });
        }
        context.Response.Headers[DatabaseEndpoints.CallIdHeader] = call.Id.ToString();
        if (respondAsync)
        {
            return Accepted(call.Id, call.Status);
        }
        call = await EndedAsync(call, calls, context.RequestAborted);
        return call.Status == "ok"
            ? new ValueResult(new Utf8Json(Encoding.UTF8.GetBytes(call.Value ?? "null")))
            : ProblemMapping.Problem(FailureOf(call), call.Error, call.Database, call.Function);
    }
}
