using Microsoft.Extensions.Diagnostics.HealthChecks;
using Procyon.Runtime;
using Procyon.Storage;

namespace Procyon.Server.Api;

internal static class ApiServiceCollectionExtensions
{
    private const string BearerScheme = "bearer";

    public static IServiceCollection AddProcyonApi(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddValidatedOptions<ApiOptions>(configuration, ApiOptions.Section);
        services.AddValidatedOptions<Storage.Tables.ReaderConnectionOptions>(configuration, Storage.Tables.ReaderConnectionOptions.Section);
        services.AddProblemDetails();
        services.AddExceptionHandler<ProblemExceptionHandler>();
        services.AddHealthChecks().AddCheck<PostgresHealthCheck>("postgres");
        services.AddEndpointsApiExplorer();
        services.AddSwaggerGen(swagger =>
        {
            swagger.SwaggerDoc("v1", new() { Title = "Procyon", Version = "v1", Description = "Call the procedures of published modules. Each function has its own operation below, grouped by database." });
            swagger.DocumentFilter<FunctionOperations>();
            swagger.OperationFilter<BinaryRequestBodyFilter>();
            // A result's value is any JSON.
            swagger.MapType<Utf8Json>(() => new Microsoft.OpenApi.OpenApiSchema());
            // Swagger UI's Authorize button: publishing, deleting, logs and private calls from the page.
            swagger.AddSecurityDefinition(BearerScheme, new Microsoft.OpenApi.OpenApiSecurityScheme
            {
                Type = Microsoft.OpenApi.SecuritySchemeType.Http,
                Scheme = "bearer",
                BearerFormat = "JWT",
                Description = "A token from POST /v1/identity (or `procyon login`). Calls without one are anonymous.",
            });
            swagger.AddSecurityRequirement(document => new Microsoft.OpenApi.OpenApiSecurityRequirement
            {
                [new Microsoft.OpenApi.OpenApiSecuritySchemeReference(BearerScheme, document)] = [],
            });
        });
        return services;
    }

    public static WebApplication UseProcyonSwagger(this WebApplication app)
    {
        app.UseSwagger(swagger => swagger.OpenApiVersion = Microsoft.OpenApi.OpenApiSpecVersion.OpenApi3_1);
        app.UseSwaggerUI();
        app.MapHealthChecks("/healthz");
        return app;
    }
}

internal sealed class PostgresHealthCheck(ModuleStore store) : IHealthCheck
{
    public async Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken)
    {
        try
        {
            await store.PingAsync(cancellationToken);
            return HealthCheckResult.Healthy();
        }
        catch (Exception e) when (e is Npgsql.NpgsqlException or TimeoutException)
        {
            return HealthCheckResult.Unhealthy("Postgres is unreachable", e);
        }
    }
}
