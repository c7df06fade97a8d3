using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authentication.JwtBearer;
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
        return services;
    }

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
        return app;
    }

    public static IEndpointRouteBuilder MapProcyonIdentity(this IEndpointRouteBuilder app)
    {
        app.MapPost("/v1/identity", (Tokens tokens) =>
            {
                var (identity, token) = tokens.Issue();
                return TypedResults.Ok(new IssuedIdentity(identity.ToString(), token));
            })
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
