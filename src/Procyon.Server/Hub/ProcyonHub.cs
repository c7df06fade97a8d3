using System.Runtime.InteropServices;
using System.Text.Json;
using Microsoft.AspNetCore.SignalR;
using Microsoft.Extensions.Options;
using Procyon.Runtime;

namespace Procyon.Server.Hub;

/// <summary>
/// <c>/hubs/procyon</c>: call functions and subscribe to results. A subscription to a database
/// covers all its functions; subscribing to one function of a database already subscribed
/// changes nothing, so no result arrives twice. Each connection has a random id, the
/// <c>ctx.connection_id()</c> of the calls made over it. A connection opened with
/// <c>?db=name</c> belongs to that database: its <c>client_connected</c> reducer runs as the
/// connection opens (an error refuses it) and its <c>client_disconnected</c> reducer as it closes.
/// </summary>
internal sealed class ProcyonHub(
    CallDispatcher dispatcher,
    DurableCalls kept,
    ModuleRegistry registry,
    ResultListeners listeners,
    ModuleLogs logs,
    IOptions<Auth.AuthOptions> auth,
    IOptions<HubOptions> limits,
    IHostApplicationLifetime lifetime) : Hub<IProcyonClient>
{
    public const string Path = "/hubs/procyon";

    /// <summary>The query parameter that binds a connection to a database's lifecycle reducers.</summary>
    public const string DatabaseParameter = "db";

    private const string ConnectionIdKey = "procyon.connection-id";

    private const string DatabaseKey = "procyon.database";

    /// <summary>Gives the connection its id; with <c>?db=</c>, runs the database's <c>client_connected</c> reducer, whose error refuses the connection.</summary>
    public override async Task OnConnectedAsync()
    {
        Context.Items[ConnectionIdKey] = System.Buffers.Binary.BinaryPrimitives.ReadUInt128LittleEndian(System.Security.Cryptography.RandomNumberGenerator.GetBytes(16));
        if (Context.GetHttpContext()?.Request.Query[DatabaseParameter].FirstOrDefault() is not { } db)
        {
            return;
        }
        RequireNames(db, null);
        if (registry.Find(db) is null)
        {
            throw new HubException($"no database named '{db}' is published");
        }
        if (Auth.AnonymousCalls.Refused(Context.User!, auth.Value))
        {
            throw new HubException(Auth.AnonymousCalls.Detail);
        }
        var result = await RunLifecycleAsync(db, FunctionKind.ClientConnected);
        if (result is { Failure: not CallFailure.None })
        {
            throw new HubException($"database '{db}' refused the connection (client_connected failed): {result.Error}");
        }
        Context.Items[DatabaseKey] = db;
    }

    /// <summary>For a connection that belonged to a database: runs its <c>client_disconnected</c> reducer (its error is only logged, with the call's result).</summary>
    public override async Task OnDisconnectedAsync(Exception? exception)
    {
        if (Context.Items.TryGetValue(DatabaseKey, out var db))
        {
            await RunLifecycleAsync((string)db!, FunctionKind.ClientDisconnected);
        }
    }

    /// <summary>The database's reducer for a lifecycle, run as this connection's caller; null when the module has none.</summary>
    private async Task<CallResult?> RunLifecycleAsync(string db, FunctionKind kind)
    {
        if (registry.Find(db)?.Description.Functions.FirstOrDefault(f => f.Kind == kind) is not { } reducer)
        {
            return null;
        }
        return await dispatcher.CallAsync(Request(db, reducer.Name, null, null) with { Lifecycle = true }, lifetime.ApplicationStopping);
    }

    /// <summary>Calls a function like <c>POST /call/{fn}</c>; the result is also pushed to the subscribers who may see it.</summary>
    public Task<CallResult> Call(string db, string fn, JsonElement? args, string? requestId = null)
    {
        var request = Request(db, fn, args, requestId);
        return Auth.AnonymousCalls.Refused(Context.User!, auth.Value)
            ? Task.FromResult(CallDispatcher.Refuse(request, CallFailure.TokenRequired, Auth.AnonymousCalls.Detail))
            : dispatcher.CallAsync(request, lifetime.ApplicationStopping);
    }

    /// <summary>
    /// <see cref="Call"/> run once per caller, database and <paramref name="key"/>, as HTTP's
    /// <c>Idempotency-Key</c>: a retry waits for the call holding the key, or gets its kept result.
    /// </summary>
    public async Task<CallResult> CallOnce(string db, string fn, JsonElement? args, string key, string? requestId = null)
    {
        var request = Request(db, fn, args, requestId) with { Kept = true };
        if (Auth.AnonymousCalls.Refused(Context.User!, auth.Value))
        {
            return CallDispatcher.Refuse(request, CallFailure.TokenRequired, Auth.AnonymousCalls.Detail);
        }
        if (Api.KeptCalls.Refusal(db, fn, key, registry) is { } refused)
        {
            return CallDispatcher.Refuse(request, refused.Failure, refused.Detail);
        }
        var asked = Api.KeptCalls.RequestSha256(fn, request.ArgumentsJson);
        if (await kept.KeepAsync(request, key, asked, Context.ConnectionAborted) is not { } holding)
        {
            return await dispatcher.CallAsync(request, lifetime.ApplicationStopping);
        }
        if (holding.RequestSha256 != asked)
        {
            return CallDispatcher.Refuse(request with { CallId = holding.Id }, CallFailure.BadArguments, Api.KeptCalls.Reused(holding));
        }
        var ended = await Api.KeptCalls.EndedAsync(holding, kept, Context.ConnectionAborted);
        return CallDispatcher.Kept(request with { CallId = ended.Id }, ended.Status, ended.Value, Api.KeptCalls.FailureOf(ended), ended.Error, ended.StartedAt);
    }

    private CallRequest Request(string db, string fn, JsonElement? args, string? requestId)
    {
        var json = args is { ValueKind: not JsonValueKind.Undefined } value ? JsonMarshal.GetRawUtf8Value(value).ToArray() : [];
        return new CallRequest(db, fn, json, Auth.Tokens.CallerOf(Context.User!), CallOrigin.Hub, requestId) { ConnectionId = (UInt128?)Context.Items[ConnectionIdKey] };
    }

    /// <summary>The results of a database (or one of its functions) this connection may see, as a stream, from now until the client ends it.</summary>
    public IAsyncEnumerable<CallResult> Results(string db, string? fn, CancellationToken cancellationToken)
    {
        RequireNames(db, fn);
        return ResultStream.ReadAllAsync(listeners, db, fn, Auth.Tokens.IdentityOf(Context.User!), limits.Value.MaxPendingBytesPerConnection, cancellationToken);
    }

    /// <summary>
    /// The database's log lines as <c>GET /logs?follow=true</c> sends them (the last
    /// <paramref name="limit"/>, then each new one, at <paramref name="level"/> or more severe),
    /// until the client ends the stream or the database is deleted; its owner's only.
    /// </summary>
    public IAsyncEnumerable<ModuleLogRecord> Logs(string db, string? level = null, int limit = 100, CancellationToken cancellationToken = default)
    {
        RequireNames(db, null);
        if (registry.Find(db) is not { } module)
        {
            throw new HubException($"no database named '{db}' is published");
        }
        if (!Auth.Ownership.IsOwner(module, Context.User!))
        {
            throw new HubException($"only the owner of database '{db}' may read its logs: connect with the owner's token");
        }
        if (ModuleLogRecord.LevelProblem(level) is { } badLevel)
        {
            throw new HubException(badLevel);
        }
        var follower = logs.Follow(db, Math.Clamp(limit, 1, 10_000), level)
            ?? throw new HubException(ModuleLogs.TooManyFollowers(db));
        return follower.ReadAllAsync(cancellationToken);
    }

    public void Subscribe(string db, string? fn = null)
    {
        RequireNames(db, fn);
        OutboxHubLifetimeManager.SubscriptionsOf(Context.Items).Subscribe(db, fn);
    }

    /// <summary>Without <paramref name="fn"/>, ends every subscription to the database.</summary>
    public void Unsubscribe(string db, string? fn = null)
    {
        RequireNames(db, fn);
        OutboxHubLifetimeManager.SubscriptionsOf(Context.Items).Unsubscribe(db, fn);
    }

    /// <summary>
    /// Only names a database or function can have: a subscription to any other could never
    /// receive a result, and the client hears so at once.
    /// </summary>
    private static void RequireNames(string db, string? fn)
    {
        if (!Api.DatabaseName.IsValid(db))
        {
            throw new HubException($"'{db}' is not a valid database name: {Api.DatabaseName.Rule}");
        }
        if (fn is not null && !ModuleLimits.IsName(fn))
        {
            throw new HubException($"'{fn}' is not a function name");
        }
    }
}

/// <summary>What the server calls on clients.</summary>
public interface IProcyonClient
{
    Task Result(CallResult result);
}
