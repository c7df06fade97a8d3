using System.Security.Cryptography;
using System.Text;
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

    /// <summary>A problem to answer before anything is kept: a bad key, or a function that is not there.</summary>
    public static IResult? Refusal(string db, string fn, string? key, ModuleRegistry registry)
    {
        if (key is not null && (key.Length is 0 or > MaxKeyLength || key.Any(char.IsControl)))
        {
            return ProblemMapping.Problem(CallFailure.BadArguments, $"the {IdempotencyKeyHeader} must be 1 to {MaxKeyLength} printable characters", db, fn);
        }
        if (registry.Find(db) is not { } module)
        {
            return ProblemMapping.Problem(CallFailure.UnknownDatabase, $"no database named '{db}' is published", db, fn);
        }
        return module.Description.Find(fn) is null
            ? ProblemMapping.Problem(CallFailure.UnknownFunction, $"database '{db}' has no function named '{fn}'", db, fn)
            : null;
    }

    /// <summary>What an idempotency key is bound to: the function and the arguments' bytes.</summary>
    public static string RequestSha256(string fn, ReadOnlyMemory<byte> body)
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        hash.AppendData(Encoding.UTF8.GetBytes(fn + "\n"));
        hash.AppendData(body.Span);
        return Convert.ToHexStringLower(hash.GetHashAndReset());
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
                $"the {IdempotencyKeyHeader} was used for another request (another function or other arguments): call {call.Id}",
                statusCode: StatusCodes.Status422UnprocessableEntity,
                title: "Idempotency key reused",
                extensions: new Dictionary<string, object?> { ["db"] = call.Database, ["fn"] = call.Function });
        }
        context.Response.Headers[DatabaseEndpoints.CallIdHeader] = call.Id.ToString();
        if (respondAsync)
        {
            return Accepted(call.Id, call.Status);
        }
        while (call.InFlight)
        {
            await Task.Delay(PollInterval, context.RequestAborted);
            call = await calls.FindAsync(call.Id, context.RequestAborted) ?? call with { Status = "error", Error = "the call was forgotten", Failure = nameof(CallFailure.Unavailable) };
        }
        return call.Status == "ok"
            ? new ValueResult(new Utf8Json(Encoding.UTF8.GetBytes(call.Value ?? "null")))
            : ProblemMapping.Problem(Enum.TryParse<CallFailure>(call.Failure, out var failure) && failure != CallFailure.None ? failure : CallFailure.Trapped, call.Error, call.Database, call.Function);
    }
}
