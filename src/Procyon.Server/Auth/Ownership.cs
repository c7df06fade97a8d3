using System.Diagnostics.CodeAnalysis;
using System.Security.Claims;
using Procyon.Runtime;

namespace Procyon.Server.Auth;

/// <summary>What only a database's owner may do: read its logs and its private tables.</summary>
internal static class Ownership
{
    public static bool IsOwner(LoadedModule module, ClaimsPrincipal user) =>
        module.Owner is { } owner && Tokens.IdentityOf(user) == owner.ToString();

    /// <summary>
    /// The published module of <paramref name="db"/> when <paramref name="user"/> owns it;
    /// otherwise <paramref name="refusal"/> is the problem to answer: 404, 401 or 403.
    /// </summary>
    public static bool TryOwned(ModuleRegistry registry, string db, ClaimsPrincipal user, string what, [NotNullWhen(true)] out LoadedModule? module, [NotNullWhen(false)] out IResult? refusal)
    {
        module = registry.Find(db);
        refusal = module is null ? Api.DatabaseEndpoints.UnknownDatabase(db) : Refusal(module, user, what);
        return refusal is null;
    }

    /// <summary>Null for the owner; otherwise the problem to answer: 401 without a token, 403 with another identity's.</summary>
    public static IResult? Refusal(LoadedModule module, ClaimsPrincipal user, string what) =>
        IsOwner(module, user)
            ? null
            : user.Identity?.IsAuthenticated == true
                ? Problem(StatusCodes.Status403Forbidden, "Not the owner", $"only the owner of database '{module.Database}' may read its {what}", module.Database)
                : Problem(StatusCodes.Status401Unauthorized, "Token required", $"the {what} of database '{module.Database}' are its owner's: send the owner's token", module.Database);

    private static IResult Problem(int status, string title, string detail, string db) =>
        TypedResults.Problem(detail, statusCode: status, title: title, extensions: new Dictionary<string, object?> { ["db"] = db });
}

/// <summary>Calls without a token, on a server that allows none (<see cref="AuthOptions.AllowAnonymousCalls"/>).</summary>
internal static class AnonymousCalls
{
    public const string Detail = "this server requires a token for calls: POST /v1/identity gives one";

    public static bool Refused(ClaimsPrincipal user, AuthOptions options) =>
        !options.AllowAnonymousCalls && user.Identity?.IsAuthenticated != true;
}
