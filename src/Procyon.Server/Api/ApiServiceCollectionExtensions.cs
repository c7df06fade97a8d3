using Microsoft.Extensions.Diagnostics.HealthChecks;
using Procyon.Runtime;
using Procyon.Storage;

namespace Procyon.Server.Api;

internal static class ApiServiceCollectionExtensions
{
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
            // A result's value is any JSON.
            swagger.MapType<Utf8Json>(() => new Microsoft.OpenApi.OpenApiSchema());
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
