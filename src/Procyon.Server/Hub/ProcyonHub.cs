using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.SignalR;
using Microsoft.Extensions.Options;
using Procyon.Runtime;

namespace Procyon.Server.Hub;

/// <summary>
/// <c>/hubs/procyon</c>: call functions and subscribe to results. A subscription to a database
/// covers all its functions; subscribing to one function of a database already subscribed
/// changes nothing, so no result arrives twice.
/// </summary>
public sealed class ProcyonHub(CallDispatcher dispatcher, ResultFeed feed, IOptions<Auth.AuthOptions> auth, IHostApplicationLifetime lifetime) : Hub<IProcyonClient>
{
    public const string Path = "/hubs/procyon";

    /// <summary>Calls a function like <c>POST /call/{fn}</c>; the result is also pushed to the subscribers who may see it.</summary>
    public Task<CallResult> Call(string db, string fn, JsonElement? args, string? requestId = null)
    {
        var json = args is { ValueKind: not JsonValueKind.Undefined } value ? Encoding.UTF8.GetBytes(value.GetRawText()) : [];
        var request = new CallRequest(db, fn, json, Auth.Tokens.CallerOf(Context.User!), CallOrigin.Hub, requestId);
        return Auth.AnonymousCalls.Refused(Context.User!, auth.Value)
            ? Task.FromResult(CallDispatcher.Refuse(request, CallFailure.TokenRequired, Auth.AnonymousCalls.Detail))
            : dispatcher.CallAsync(request, lifetime.ApplicationStopping);
    }

    /// <summary>The results of a database (or one of its functions) this connection may see, as a stream, from now until the client ends it.</summary>
    public IAsyncEnumerable<CallResult> Results(string db, string? fn, CancellationToken cancellationToken)
    {
        RequireNames(db, fn);
        return feed.ReadAllAsync(db, fn, Auth.Tokens.IdentityOf(Context.User!), cancellationToken);
    }

    public async Task Subscribe(string db, string? fn = null)
    {
        RequireNames(db, fn);
        var subscriptions = Subscriptions;
        if (subscriptions.Contains(ResultGroups.Database(db)))
        {
            return;
        }
        if (fn is null)
        {
            foreach (var group in subscriptions.Where(g => ResultGroups.IsFunctionOf(g, db)).ToList())
            {
                await Leave(subscriptions, group);
            }
        }
        var joined = ResultGroups.For(db, fn);
        foreach (var group in ResultGroups.Memberships(joined, Auth.Tokens.IdentityOf(Context.User!)))
        {
            await Groups.AddToGroupAsync(Context.ConnectionId, group);
        }
        subscriptions.Add(joined);
    }

    /// <summary>Without <paramref name="fn"/>, ends every subscription to the database.</summary>
    public async Task Unsubscribe(string db, string? fn = null)
    {
        RequireNames(db, fn);
        var subscriptions = Subscriptions;
        var leaving = fn is null
            ? subscriptions.Where(g => g == ResultGroups.Database(db) || ResultGroups.IsFunctionOf(g, db)).ToList()
            : [ResultGroups.Function(db, fn)];
        foreach (var group in leaving)
        {
            await Leave(subscriptions, group);
        }
    }

    /// <summary>
    /// Only names a database or function can have: group names are built from them, and a name
    /// holding a separator could spell another identity's private group.
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

    private HashSet<string> Subscriptions
    {
        get
        {
            if (Context.Items.TryGetValue(nameof(Subscriptions), out var existing))
            {
                return (HashSet<string>)existing!;
            }
            var created = new HashSet<string>(StringComparer.Ordinal);
            Context.Items[nameof(Subscriptions)] = created;
            return created;
        }
    }

    private async Task Leave(HashSet<string> subscriptions, string subscription)
    {
        foreach (var group in ResultGroups.Memberships(subscription, Auth.Tokens.IdentityOf(Context.User!)))
        {
            await Groups.RemoveFromGroupAsync(Context.ConnectionId, group);
        }
        subscriptions.Remove(subscription);
    }
}

/// <summary>What the server calls on clients.</summary>
public interface IProcyonClient
{
    Task Result(CallResult result);
}

/// <summary>
/// SignalR group names for result subscriptions. A subscription (<c>db:{db}</c> or <c>fn:{db}/{fn}</c>)
/// is one group for the results everyone may see and, for a connection with a token, one more
/// (<c>…@{identity}</c>) for the results only that identity may see (<see cref="ResultAudience"/>).
/// </summary>
internal static class ResultGroups
{
    public static string Database(string db) => $"db:{db}";

    public static string Function(string db, string fn) => $"fn:{db}/{fn}";

    public static string For(string db, string? fn) => fn is null ? Database(db) : Function(db, fn);

    public static bool IsFunctionOf(string group, string db) => group.StartsWith($"fn:{db}/", StringComparison.Ordinal);

    /// <summary>The groups a connection joins for one subscription.</summary>
    /// <param name="viewer">The connection's identity; null without a token.</param>
    public static IEnumerable<string> Memberships(string subscription, string? viewer) =>
        viewer is null ? [subscription] : [subscription, Personal(subscription, viewer)];

    /// <summary>The groups a result is sent to.</summary>
    public static IReadOnlyList<string> Of(CallResult result)
    {
        string[] subscriptions = [Database(result.Db), Function(result.Db, result.Fn)];
        return result.Audience.Everyone
            ? subscriptions
            : result.Audience.Identities.SelectMany(identity => subscriptions.Select(s => Personal(s, identity))).ToList();
    }

    private static string Personal(string subscription, string identity) => $"{subscription}@{identity}";
}
