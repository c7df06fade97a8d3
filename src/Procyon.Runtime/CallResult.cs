using System.Runtime.InteropServices;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace Procyon.Runtime;

/// <summary>Why a call did not return a value; the server maps each to one HTTP status.</summary>
public enum CallFailure
{
    None,

    /// <summary>A call without a token, on a server that allows none.</summary>
    TokenRequired,
    UnknownDatabase,
    UnknownFunction,
    BadArguments,

    /// <summary>A reducer returned <c>Err</c>; its transaction was rolled back.</summary>
    ReducerFailed,
    Trapped,

    /// <summary>Postgres could not serialize the call's transaction, even after retries.</summary>
    Contention,
    Timeout,

    /// <summary>The call's transaction outlived <see cref="RuntimeOptions.TransactionTimeout"/>; it was rolled back.</summary>
    TransactionTimeout,
    Overloaded,

    /// <summary>Postgres failed the host (a lost connection, a restart): nothing the module did is to blame.</summary>
    Unavailable,

    /// <summary>The caller has too many calls in flight (<see cref="RuntimeOptions.MaxCallsPerIdentity"/>).</summary>
    TooManyCalls,

    /// <summary>The server is shutting down.</summary>
    Cancelled,

    /// <summary>The caller or the database's owner cancelled the call (<c>DELETE /v1/calls/{id}</c>).</summary>
    CancelledByRequest,
}

public static class CallOrigin
{
    public const string Http = "http";
    public const string Hub = "hub";
    public const string Schedule = "schedule";

    /// <summary>The init reducer, run by the server when a database is first published.</summary>
    public const string Init = "init";
}

/// <summary>A call to make, from whichever caller.</summary>
/// <param name="ArgumentsJson">UTF-8 JSON: an array of positional arguments or an object of named ones; empty means none.</param>
public sealed record CallRequest(string Database, string Function, ReadOnlyMemory<byte> ArgumentsJson, Identity Caller, string Origin, string? RequestId = null)
{
    /// <summary>The call's id, in its result and, for a durable call, at <c>GET /v1/calls/{id}</c>.</summary>
    public Guid CallId { get; init; } = Guid.CreateVersion7();

    /// <summary>Whether its end is kept at <c>GET /v1/calls/{id}</c> whether or not it slept (made asynchronously or with an idempotency key).</summary>
    public bool Kept { get; init; }

    /// <summary>For a scheduled run: the row's <c>scheduled_id</c>.</summary>
    public ulong? ScheduleId { get; init; }

    /// <summary>For a scheduled run: the scheduled table of its row.</summary>
    public string? ScheduledTable { get; init; }

    /// <summary>For a call made over a hub connection: the connection's id (<c>ctx.connection_id()</c>).</summary>
    public UInt128? ConnectionId { get; init; }

    /// <summary>Made by the server for a lifecycle (a hub connection opening or closing): it may run that lifecycle's reducer, which callers may not.</summary>
    public bool Lifecycle { get; init; }
}

/// <summary>The outcome of a call, as HTTP returns it and as the hub pushes it to subscribers.</summary>
public sealed record CallResult
{
    public string? RequestId { get; init; }

    public Guid CallId { get; init; }

    public required string Db { get; init; }

    public required string Fn { get; init; }

    public required string Origin { get; init; }

    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public ulong? ScheduleId { get; init; }

    /// <summary><c>ok</c>, <c>error</c> or <c>timeout</c>.</summary>
    public required string Status { get; init; }

    /// <summary>The return value as JSON; absent unless the status is <c>ok</c>.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public Utf8Json? Value { get; init; }

    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? Error { get; init; }

    public required DateTimeOffset StartedAt { get; init; }

    public required long DurationMicros { get; init; }

    /// <summary>The caller's identity in hex.</summary>
    public required string Caller { get; init; }

    [JsonIgnore]
    public CallFailure Failure { get; init; }

    /// <summary>Who may see this result besides the one it answers.</summary>
    [JsonIgnore]
    public ResultAudience Audience { get; init; } = ResultAudience.Nobody;
}

/// <summary>
/// Who receives a result through subscriptions: everyone for a public function; otherwise the
/// identity that made the call (not the anonymous one, which everybody shares) and the
/// database's owner. Identities in hex.
/// </summary>
public sealed record ResultAudience(bool Everyone, IReadOnlyList<string> Identities)
{
    public static ResultAudience Nobody { get; } = new(false, []);

    private static ResultAudience Everybody { get; } = new(true, []);

    public static ResultAudience Of(LoadedModule? module, FunctionDescription? function, Identity caller)
    {
        if (function is { IsPublic: true })
        {
            return Everybody;
        }
        var owner = module?.Owner;
        if (caller == Identity.Anonymous || caller == owner)
        {
            return owner is { } only ? new(false, [only.ToString()]) : Nobody;
        }
        return new(false, owner is { } other ? [caller.ToString(), other.ToString()] : [caller.ToString()]);
    }

    /// <param name="viewer">The subscriber's identity; null when it has no token.</param>
    public bool Includes(string? viewer) => Everyone || (viewer is not null && Identities.Contains(viewer));
}

/// <summary>
/// One value as UTF-8 JSON, written once by the host and handed as is to HTTP (the response body)
/// and to the hub (inside each <see cref="CallResult"/> message). Serializers write it as it
/// is: values nest up to <see cref="Sats.ValueLimits.MaxDepth"/>, deeper than serializers
/// write by default (64), and the host checked it already.
/// </summary>
[JsonConverter(typeof(AsWritten))]
public sealed class Utf8Json(byte[] utf8)
{
    public ReadOnlyMemory<byte> Utf8 => utf8;

    /// <summary>The JSON as text.</summary>
    public override string ToString() => System.Text.Encoding.UTF8.GetString(utf8);

    private sealed class AsWritten : JsonConverter<Utf8Json>
    {
        public override Utf8Json Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
        {
            using var value = JsonDocument.ParseValue(ref reader);
            return new(JsonMarshal.GetRawUtf8Value(value.RootElement).ToArray());
        }

        public override void Write(Utf8JsonWriter writer, Utf8Json value, JsonSerializerOptions options) =>
            writer.WriteRawValue(value.Utf8.Span, skipInputValidation: true);
    }
}
