using Procyon.Runtime;
using Procyon.Runtime.Scheduling;
using Procyon.Server.Auth;
using Procyon.Storage.Tables;

namespace Procyon.Server.Dashboard;

/// <summary>A scheduled table as the console shows it: what waits in it and how its recent runs on this server went.</summary>
/// <param name="Pending">Rows in the table, counted up to <see cref="DashboardEndpoints.PendingCap"/>; <paramref name="More"/> says there are more.</param>
/// <param name="NextDue">When its earliest row is due (a running row counts at its lease's end); null when it is empty.</param>
/// <param name="Recent">The last runs on this server, newest first.</param>
/// <param name="Failures">The last failed runs on this server, newest first.</param>
internal sealed record ScheduledTableView(
    string Table,
    string Function,
    string Kind,
    long Pending,
    bool More,
    DateTimeOffset? NextDue,
    IReadOnlyList<ScheduledRunRecord> Recent,
    IReadOnlyList<ScheduledRunRecord> Failures);

/// <summary>What the console's dashboard reads besides the public API: a database's activity and its scheduler, for its owner.</summary>
internal static class DashboardEndpoints
{
    public const int PendingCap = 10_000;

    public static IServiceCollection AddProcyonDashboard(this IServiceCollection services)
    {
        services.AddSingleton<CallActivity>();
        services.AddHostedService(sp => sp.GetRequiredService<CallActivity>());
        return services;
    }

    public static RouteGroupBuilder MapDashboardApi(this RouteGroupBuilder databases)
    {
        databases.MapGet("/activity", GetActivity)
            .WithSummary("Calls, durations and scheduler lateness over the last five minutes (owner only)")
            .WithDescription("Five-second points, oldest first, counted on this server: calls that ended (refused ones included), those that failed, p50 and p99 duration, scheduled rows that started and the p99 of how late they started. Percentiles are read from a histogram, to within a fifth.")
            .Produces<ActivityView>()
            .ProducesProblem(StatusCodes.Status401Unauthorized)
            .ProducesProblem(StatusCodes.Status403Forbidden)
            .ProducesProblem(StatusCodes.Status404NotFound);
        databases.MapGet("/scheduler", GetSchedulerAsync)
            .WithSummary("The scheduled tables: rows waiting, the next due time, recent runs and failures (owner only)")
            .WithDescription($"Rows are counted up to {PendingCap:N0} (`more` says there are more). Runs are those of this server since its module was loaded: the last {ScheduleHistory.Kept} and, apart, the last {ScheduleHistory.Kept} failures, newest first.")
            .Produces<IReadOnlyList<ScheduledTableView>>()
            .ProducesProblem(StatusCodes.Status401Unauthorized)
            .ProducesProblem(StatusCodes.Status403Forbidden)
            .ProducesProblem(StatusCodes.Status404NotFound);
        return databases;
    }

    private static IResult GetActivity(string db, HttpContext context, ModuleRegistry registry, CallActivity activity) =>
        Ownership.TryOwned(registry, db, context.User, "activity figures", out _, out var refusal) ? TypedResults.Ok(activity.Of(db)) : refusal;

    private static async Task<IResult> GetSchedulerAsync(string db, HttpContext context, ModuleRegistry registry, ScheduleStore store, ScheduleHistory history, CancellationToken cancellationToken)
    {
        if (!Ownership.TryOwned(registry, db, context.User, "scheduled tables", out var module, out var refusal))
        {
            return refusal;
        }
        var tables = new List<ScheduledTableView>();
        foreach (var table in module.Tables.Values.Where(t => t.ScheduledFunction is not null).OrderBy(t => t.Name, StringComparer.Ordinal))
        {
            var (pending, nextDue) = await store.PendingAsync(table, PendingCap + 1, cancellationToken);
            var (recent, failures) = history.Of(table);
            var kind = module.Description.Find(table.ScheduledFunction!)?.KindName ?? "";
            tables.Add(new ScheduledTableView(table.Name, table.ScheduledFunction!, kind, Math.Min(pending, PendingCap), pending > PendingCap, nextDue, recent, failures));
        }
        return TypedResults.Ok(tables);
    }
}
