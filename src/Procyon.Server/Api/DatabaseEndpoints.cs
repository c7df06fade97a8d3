using Microsoft.AspNetCore.Mvc;
using Microsoft.Extensions.Options;
using Procyon.Runtime;
using Procyon.Server.Auth;
using Procyon.Server.Dashboard;
using Procyon.Storage.Tables;

namespace Procyon.Server.Api;

/// <summary>The HTTP API under <c>/v1/databases</c>.</summary>
internal static class DatabaseEndpoints
{
    /// <summary>The response header naming a call's id (see <c>GET /v1/calls/{id}</c>).</summary>
    public const string CallIdHeader = "Procyon-Call-Id";

    public static IEndpointRouteBuilder MapProcyonApi(this IEndpointRouteBuilder app)
    {
        app.MapGet("/v1/databases", (ModuleRegistry registry) => TypedResults.Ok(registry.All.Select(ModuleSchema.Of).ToList()))
            .WithTags("Databases")
            .WithSummary("The published databases with their functions, tables and types");
        var databases = app.MapGroup("/v1/databases/{db}")
            .WithTags("Databases")
            .AddEndpointFilter(async (context, next) =>
            {
                var db = (string)context.HttpContext.GetRouteValue("db")!;
                return DatabaseName.IsValid(db)
                    ? await next(context)
                    : TypedResults.Problem($"'{db}' is not a valid database name: {DatabaseName.Rule}", statusCode: StatusCodes.Status400BadRequest, title: "Bad database name");
            });

        databases.MapPut("", PublishAsync)
            .RequireAuthorization()
            .WithMetadata(new BinaryRequestBody("application/octet-stream", "The module's .wasm (any content type is accepted)"))
            .WithSummary("Publish or update a module")
            .WithDescription("The body is the module's .wasm. 201 when the database is new, 200 when it replaced a module. New tables are created; changed or removed ones are refused with 409 unless ?clear=true drops their data. Calls asleep in Postgres wake on the code they went to sleep in, unless ?cancelSleeping=true (or ?clear=true) cancels them. When the tables were created from nothing, the init reducer runs in the same transaction and its result is in `init`; if it fails, nothing is published (422).")
            .Produces<ModuleSchema>(StatusCodes.Status200OK)
            .Produces<ModuleSchema>(StatusCodes.Status201Created)
            .ProducesProblem(StatusCodes.Status400BadRequest)
            .ProducesProblem(StatusCodes.Status401Unauthorized)
            .ProducesProblem(StatusCodes.Status403Forbidden)
            .ProducesProblem(StatusCodes.Status409Conflict)
            .ProducesProblem(StatusCodes.Status413PayloadTooLarge)
            .ProducesProblem(StatusCodes.Status422UnprocessableEntity)
            .ProducesProblem(StatusCodes.Status503ServiceUnavailable);
        databases.MapDelete("", DeleteAsync)
            .RequireAuthorization()
            .WithSummary("Delete a database and its module")
            .ProducesProblem(StatusCodes.Status401Unauthorized)
            .ProducesProblem(StatusCodes.Status403Forbidden)
            .ProducesProblem(StatusCodes.Status404NotFound);
        databases.MapGet("/schema", GetSchema)
            .WithSummary("The module's functions and types")
            .ProducesProblem(StatusCodes.Status404NotFound);
        databases.MapGet("/logs", GetLogs)
            .WithSummary("Recent log lines the module wrote on this server (owner only)")
            .WithDescription("`limit` (1-10,000, default 100) recent lines, oldest first; `level` (ERROR, WARN, INFO, DEBUG, TRACE) keeps that level and the more severe ones. With `follow=true`: a `text/event-stream` of `log` events, the recent lines and then each new line as the module writes it on this server, until the client disconnects or the database is deleted.")
            .ProducesProblem(StatusCodes.Status401Unauthorized)
            .ProducesProblem(StatusCodes.Status403Forbidden)
            .ProducesProblem(StatusCodes.Status404NotFound);
        databases.MapPost("/sql", QueryAsync)
            .WithSummary("Read-only SQL over the database's tables")
            .WithDescription("The body is one SQL statement. With the owner's token it reads every table; otherwise only public tables, and a query touching a private table is a 403. It runs as a read-only role of the database's own, with search_path set to its schema, a statement timeout, a row limit and a byte limit (413 beyond it). Returns {columns, rows, truncated}.")
            .ProducesProblem(StatusCodes.Status400BadRequest)
            .ProducesProblem(StatusCodes.Status403Forbidden)
            .ProducesProblem(StatusCodes.Status404NotFound)
            .ProducesProblem(StatusCodes.Status413PayloadTooLarge)
            .ProducesProblem(StatusCodes.Status503ServiceUnavailable);
        databases.MapDashboardApi();
        databases.MapPost("/call/{fn}", CallAsync)
            .WithSummary("Call a procedure")
            .WithDescription("The body is a JSON array of positional arguments or an object of named arguments; empty means no arguments. `Prefer: respond-async` answers 202 at once with the call's `Location` (GET /v1/calls/{id}); `Idempotency-Key: K` runs the call once per caller, database and key: a retry waits for it or gets its kept result (422 if it asks something else).")
            .Produces<object>(StatusCodes.Status200OK)
            .Produces<CallView>(StatusCodes.Status202Accepted)
            .ProducesProblem(StatusCodes.Status400BadRequest)
            .ProducesProblem(StatusCodes.Status401Unauthorized)
            .ProducesProblem(StatusCodes.Status404NotFound)
            .ProducesProblem(StatusCodes.Status413PayloadTooLarge)
            .ProducesProblem(StatusCodes.Status422UnprocessableEntity)
            .ProducesProblem(StatusCodes.Status500InternalServerError)
            .ProducesProblem(StatusCodes.Status503ServiceUnavailable)
            .ProducesProblem(StatusCodes.Status504GatewayTimeout);
        return app;
    }

    private static async Task<IResult> PublishAsync(
        string db,
        [FromQuery] bool? clear,
        [FromQuery] bool? cancelSleeping,
        HttpRequest request,
        ModulePublisher publisher,
        IOptions<RuntimeOptions> runtime,
        CancellationToken cancellationToken)
    {
        var wasm = await RequestBody.ReadAsync(request, runtime.Value.MaxModuleBytes, cancellationToken);
        var outcome = await publisher.PublishAsync(db, wasm, Tokens.CallerOf(request.HttpContext.User), clear ?? false, cancelSleeping ?? false, cancellationToken);
        var schema = ModuleSchema.Of(outcome.Module) with { Init = outcome.Init };
        return outcome.Created ? TypedResults.Created($"/v1/databases/{db}/schema", schema) : TypedResults.Ok(schema);
    }

    private static async Task<IResult> DeleteAsync(string db, HttpContext context, ModulePublisher publisher, CancellationToken cancellationToken) =>
        await publisher.DeleteAsync(db, Tokens.CallerOf(context.User), cancellationToken) ? TypedResults.NoContent() : UnknownDatabase(db);

    private static IResult GetSchema(string db, ModuleRegistry registry) =>
        registry.Find(db) is { } module ? TypedResults.Ok(ModuleSchema.Of(module)) : UnknownDatabase(db);

    private static async Task<IResult> GetLogs(string db, HttpContext context, ModuleRegistry registry, ModuleLogs logs, IHostApplicationLifetime lifetime, [FromQuery] int? limit, [FromQuery] bool? follow, [FromQuery] string? level)
    {
        if (ModuleLogRecord.LevelProblem(level) is { } badLevel)
        {
            return TypedResults.Problem(badLevel, statusCode: StatusCodes.Status400BadRequest, title: "Bad log level");
        }
        if (!Ownership.TryOwned(registry, db, context.User, "logs", out _, out var refusal))
        {
            return refusal;
        }
        var count = Math.Clamp(limit ?? 100, 1, 10_000);
        if (follow != true)
        {
            return TypedResults.Ok(logs.Recent(db, count, level));
        }
        using var follower = logs.Follow(db, count, level);
        if (follower is null)
        {
            context.Response.Headers.RetryAfter = "1";
            return TypedResults.Problem(ModuleLogs.TooManyFollowers(db), statusCode: StatusCodes.Status503ServiceUnavailable, title: "Too many log followers");
        }
        // The headers go at once, so the client knows it follows before any line comes; the
        // stream ends when the client goes, the server stops or the database is deleted.
        using var ending = CancellationTokenSource.CreateLinkedTokenSource(context.RequestAborted, lifetime.ApplicationStopping);
        context.Response.ContentType = "text/event-stream";
        context.Response.Headers.CacheControl = "no-cache";
        context.Features.Get<Microsoft.AspNetCore.Http.Features.IHttpResponseBodyFeature>()?.DisableBuffering();
        try
        {
            await context.Response.StartAsync(ending.Token);
            await context.Response.Body.FlushAsync(ending.Token);
            await System.Net.ServerSentEvents.SseFormatter.WriteAsync(follower.ReadAllAsync(ending.Token).Select(LogEvent), context.Response.Body, ending.Token);
        }
        catch (OperationCanceledException) when (ending.IsCancellationRequested)
        {
            // The client went or the server stops: the stream just ends.
        }
        return Results.Empty;
    }

    private static System.Net.ServerSentEvents.SseItem<string> LogEvent(ModuleLogRecord record) =>
        new(System.Text.Json.JsonSerializer.Serialize(record, System.Text.Json.JsonSerializerOptions.Web), "log");

    private static async Task<IResult> QueryAsync(string db, HttpRequest request, ModuleRegistry registry, ReadOnlyQueries queries, IOptions<ApiOptions> options, CancellationToken cancellationToken)
    {
        if (registry.Find(db) is not { } module)
        {
            return UnknownDatabase(db);
        }
        var sql = System.Text.Encoding.UTF8.GetString(await RequestBody.ReadAsync(request, options.Value.MaxCallBodyBytes, cancellationToken));
        var reader = Ownership.IsOwner(module, request.HttpContext.User) ? SqlReader.Owner : SqlReader.Public;
        var answer = await queries.RunAsync(db, reader, sql, new QueryLimits(options.Value.SqlRowLimit, options.Value.SqlMaxBytes, options.Value.SqlTimeout), cancellationToken);
        return TypedResults.Stream(body => answer.CopyToAsync(body, cancellationToken), "application/json");
    }

    private static async Task<IResult> CallAsync(
        string db,
        string fn,
        HttpRequest request,
        CallDispatcher dispatcher,
        DurableCalls kept,
        ModuleRegistry registry,
        IOptions<ApiOptions> options,
        IOptions<AuthOptions> auth,
        IHostApplicationLifetime lifetime,
        CancellationToken cancellationToken)
    {
        if (AnonymousCalls.Refused(request.HttpContext.User, auth.Value))
        {
            return ProblemMapping.Problem(CallFailure.TokenRequired, AnonymousCalls.Detail, db, fn);
        }
        var body = await RequestBody.ReadAsync(request, options.Value.MaxCallBodyBytes, cancellationToken);
        var key = request.Headers[KeptCalls.IdempotencyKeyHeader].FirstOrDefault();
        var respondAsync = KeptCalls.PrefersAsync(request);
        var call = new CallRequest(db, fn, body, Tokens.CallerOf(request.HttpContext.User), CallOrigin.Http) { Kept = key is not null || respondAsync };
        if (call.Kept)
        {
            if (KeptCalls.Refusal(db, fn, key, registry) is { } refused)
            {
                return ProblemMapping.Problem(refused.Failure, refused.Detail, db, fn);
            }
            var asked = KeptCalls.RequestSha256(fn, body);
            if (await kept.KeepAsync(call, key, asked, cancellationToken) is { } holding)
            {
                return await KeptCalls.AnswerAsync(holding, asked, respondAsync, kept, request.HttpContext);
            }
            if (respondAsync)
            {
                // Runs on past this request, to the end the server's own shutdown allows; its end is kept.
                _ = dispatcher.CallAsync(call, lifetime.ApplicationStopping);
                return KeptCalls.Accepted(call.CallId, "running");
            }
        }
        var result = await dispatcher.CallAsync(call, lifetime.ApplicationStopping);
        request.HttpContext.Response.Headers[CallIdHeader] = result.CallId.ToString();
        if (result.Failure is CallFailure.Overloaded or CallFailure.Contention or CallFailure.Unavailable or CallFailure.TooManyCalls)
        {
            request.HttpContext.Response.Headers.RetryAfter = "1";
        }
        return result.Failure == CallFailure.None ? new ValueResult(result.Value!) : ProblemMapping.Problem(result);
    }

    internal static IResult UnknownDatabase(string db) =>
        ProblemMapping.Problem(CallFailure.UnknownDatabase, $"no database named '{db}' is published", db, null);
}
