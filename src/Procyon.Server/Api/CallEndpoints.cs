using System.Text;
using Procyon.Runtime;
using Procyon.Server.Auth;
using Procyon.Storage;

namespace Procyon.Server.Api;

/// <summary>A kept call as <c>GET /v1/calls/{id}</c> answers it.</summary>
/// <param name="Status"><c>running</c>, <c>sleeping</c>, or how it ended: <c>ok</c>, <c>error</c>, <c>timeout</c> or <c>cancelled</c>.</param>
internal sealed record CallView(Guid Id, string Db, string Fn, string Status, Utf8Json? Value, string? Error, DateTimeOffset StartedAt, DateTimeOffset? FinishedAt, DateTimeOffset? WakeAt)
{
    public static CallView Of(StoredCall call) => new(
        call.Id, call.Database, call.Function, call.Status, call.Value is null ? null : new Utf8Json(Encoding.UTF8.GetBytes(call.Value)), call.Error, call.StartedAt, call.FinishedAt, call.WakeAt);
}

/// <summary>The HTTP API of kept calls: one by id, and a database's sleeping ones.</summary>
internal static class CallEndpoints
{
    private const int ListLimit = 1000;

    public static IEndpointRouteBuilder MapCallApi(this IEndpointRouteBuilder app)
    {
        app.MapGet("/v1/calls/{id:guid}", GetAsync)
            .WithTags("Calls")
            .WithSummary("A kept call: running, asleep in Postgres, or finished with its result (caller or database owner)")
            .WithDescription("Calls that slept at least Procyon:Runtime:DurableSleepAfter, or were made with Prefer: respond-async or an Idempotency-Key, are kept; their results for Procyon:Runtime:CallRetention. Other calls are not kept: 404.")
            .Produces<CallView>()
            .ProducesProblem(StatusCodes.Status404NotFound);
        app.MapDelete("/v1/calls/{id:guid}", CancelAsync)
            .WithTags("Calls")
            .WithSummary("Cancel a kept call that has not ended (caller or database owner)")
            .WithDescription("A sleeping call ends at once with status cancelled and its snapshot is removed; a running one is stopped at its next suspension (a sleep, a table call). 409 when it had already ended.")
            .Produces<CallView>()
            .ProducesProblem(StatusCodes.Status404NotFound)
            .ProducesProblem(StatusCodes.Status409Conflict);
        app.MapGet("/v1/databases/{db}/calls", ListAsync)
            .WithTags("Calls")
            .WithSummary("The database's durable calls asleep in Postgres, soonest to wake first (owner only)")
            .Produces<List<CallView>>()
            .ProducesProblem(StatusCodes.Status401Unauthorized)
            .ProducesProblem(StatusCodes.Status403Forbidden)
            .ProducesProblem(StatusCodes.Status404NotFound);
        return app;
    }

    private static async Task<IResult> GetAsync(Guid id, HttpContext context, DurableCallStore store, ModuleRegistry registry, CancellationToken cancellationToken) =>
        await VisibleAsync(id, context, store, registry, cancellationToken) is { } call ? TypedResults.Ok(CallView.Of(call)) : Unknown(id);

    private static async Task<IResult> CancelAsync(Guid id, HttpContext context, DurableCallStore store, DurableCalls calls, ModuleRegistry registry, CancellationToken cancellationToken)
    {
        if (await VisibleAsync(id, context, store, registry, cancellationToken) is not { } call)
        {
            return Unknown(id);
        }
        if (!call.InFlight || !await calls.CancelAsync(id, cancellationToken))
        {
            return TypedResults.Problem($"call {id} had already ended ({call.Status})", statusCode: StatusCodes.Status409Conflict, title: "Call ended");
        }
        return TypedResults.Ok(CallView.Of((await store.FindAsync(id, cancellationToken))!));
    }

    /// <summary>The call, if this identity may see it: its caller or the database's owner. Another identity's call looks like none at all.</summary>
    private static async Task<StoredCall?> VisibleAsync(Guid id, HttpContext context, DurableCallStore store, ModuleRegistry registry, CancellationToken cancellationToken) =>
        await store.FindAsync(id, cancellationToken) is { } call
            && (call.Caller == Tokens.CallerOf(context.User).ToString() || registry.Find(call.Database) is { } module && Ownership.IsOwner(module, context.User))
            ? call
            : null;

    private static IResult Unknown(Guid id) =>
        TypedResults.Problem($"no kept call {id} that this identity may see", statusCode: StatusCodes.Status404NotFound, title: "Unknown call");

    private static async Task<IResult> ListAsync(string db, HttpContext context, DurableCallStore store, ModuleRegistry registry, CancellationToken cancellationToken) =>
        Ownership.TryOwned(registry, db, context.User, "calls", out _, out var refusal)
            ? TypedResults.Ok((await store.SleepingAsync(db, ListLimit, cancellationToken)).Select(CallView.Of).ToList())
            : refusal;
}
