using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authentication.JwtBearer;
using System.Threading.RateLimiting;
using Microsoft.AspNetCore.RateLimiting;
using Microsoft.Extensions.Options;
using Procyon.Runtime;

namespace Procyon.Server.Auth;

internal static class AuthServiceCollectionExtensions
{
    public static IServiceCollection AddProcyonAuth(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddValidatedOptions<AuthOptions>(configuration, AuthOptions.Section);
        services.AddSingleton<Tokens>();
        services.AddHostedService<SigningKeyLoader>();
        services.AddAuthentication(JwtBearerDefaults.AuthenticationScheme).AddJwtBearer();
        services.AddSingleton<IPostConfigureOptions<JwtBearerOptions>, BearerConfiguration>();
        services.AddAuthorization();
        services.AddRateLimiter(limiter =>
        {
            limiter.AddPolicy(IdentityCreation, context => RateLimitPartition.GetFixedWindowLimiter(
                context.Connection.RemoteIpAddress?.ToString() ?? "",
                _ => new FixedWindowRateLimiterOptions
                {
                    PermitLimit = context.RequestServices.GetRequiredService<IOptions<AuthOptions>>().Value.IdentitiesPerMinute,
                    Window = TimeSpan.FromMinutes(1),
                    QueueLimit = 0,
                }));
            limiter.OnRejected = async (context, _) =>
            {
                context.HttpContext.Response.Headers.RetryAfter = context.Lease.TryGetMetadata(MetadataName.RetryAfter, out var retryAfter)
                    ? ((int)Math.Ceiling(retryAfter.TotalSeconds)).ToString(System.Globalization.CultureInfo.InvariantCulture)
                    : "60";
                await TypedResults.Problem(
                    "this address created as many identities as it may this minute (Procyon:Auth:IdentitiesPerMinute); try again later",
                    statusCode: StatusCodes.Status429TooManyRequests,
                    title: "Too many identities").ExecuteAsync(context.HttpContext);
            };
        });
        return services;
    }

    /// <summary>The rate limit on <c>POST /v1/identity</c>, per client address.</summary>
    private const string IdentityCreation = "identity-creation";

    /// <summary>
    /// Authentication and authorization, with one rule between them: a token that does not
    /// validate (bad signature, expired, garbage) is a 401 everywhere, the hub's negotiate
    /// included, and never quietly taken as the anonymous identity.
    /// </summary>
    public static WebApplication UseProcyonAuth(this WebApplication app)
    {
        app.UseAuthentication();
        app.Use(async (context, next) =>
        {
            if ((await context.AuthenticateAsync()).Failure is not null)
            {
                await TypedResults.Problem("the bearer token is invalid or expired", statusCode: StatusCodes.Status401Unauthorized, title: "Bad token").ExecuteAsync(context);
                return;
            }
            await next(context);
        });
        app.UseAuthorization();
        app.UseRateLimiter();
        return app;
    }

    public static IEndpointRouteBuilder MapProcyonIdentity(this IEndpointRouteBuilder app)
    {
        app.MapPost("/v1/identity", (Tokens tokens) =>
            {
                var (identity, token) = tokens.Issue();
                return TypedResults.Ok(new IssuedIdentity(identity.ToString(), token));
            })
            .RequireRateLimiting(IdentityCreation)
            .WithTags("Identity")
            .WithSummary("Create an identity")
            .WithDescription("Returns a new identity and a signed token (JWT). Send it as `Authorization: Bearer <token>`, or as `?access_token=` to the hub.");
        return app;
    }

    private sealed class BearerConfiguration(Tokens tokens) : IPostConfigureOptions<JwtBearerOptions>
    {
        public void PostConfigure(string? name, JwtBearerOptions options) => tokens.Configure(options);
    }

    /// <summary>Loads the signing key before the server takes requests.</summary>
    private sealed class SigningKeyLoader(Tokens tokens, Storage.ModuleStore store) : IHostedService
    {
        public async Task StartAsync(CancellationToken cancellationToken)
        {
            await store.EnsureCatalogAsync(cancellationToken);
            await tokens.LoadKeyAsync(cancellationToken);
        }

        public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    }
}

/// <summary>What <c>POST /v1/identity</c> returns.</summary>
internal sealed record IssuedIdentity(string Identity, string Token);
