using System.Net;
using OpenTelemetry.Metrics;
using OpenTelemetry.Resources;
using OpenTelemetry.Trace;
using Procyon.Runtime;

namespace Procyon.Server.Telemetry;

/// <summary>Where operators look: the server's own instruments as <c>/metrics</c>, and traces to an OTLP collector.</summary>
internal sealed class TelemetryOptions
{
    public const string Section = "Procyon:Telemetry";

    /// <summary>False turns OpenTelemetry off: no <c>/metrics</c>, no export, nothing recorded.</summary>
    public bool Enabled { get; set; } = true;

    /// <summary>Whether <c>/metrics</c> answers callers other than the loopback address (it names every database and function).</summary>
    public bool PublicMetrics { get; set; }
}

internal static class TelemetryServiceCollectionExtensions
{
    public const string MetricsPath = "/metrics";

    /// <summary>
    /// OpenTelemetry: the <c>Procyon</c> meter and ASP.NET Core's, exported for Prometheus; with
    /// <c>OTEL_EXPORTER_OTLP_ENDPOINT</c> set, metrics and traces (a span per call, under the
    /// request's, which honours the caller's <c>traceparent</c>) go to that collector too.
    /// </summary>
    public static IServiceCollection AddProcyonTelemetry(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddValidatedOptions<TelemetryOptions>(configuration, TelemetryOptions.Section);
        if (!configuration.GetValue(TelemetryOptions.Section + ":" + nameof(TelemetryOptions.Enabled), true))
        {
            return services;
        }
        var otlp = !string.IsNullOrEmpty(configuration["OTEL_EXPORTER_OTLP_ENDPOINT"]);
        var telemetry = services.AddOpenTelemetry()
            .ConfigureResource(resource => resource.AddService("procyon"))
            .WithMetrics(metrics =>
            {
                metrics.AddMeter(ProcyonTelemetry.Name).AddAspNetCoreInstrumentation().AddPrometheusExporter();
                if (otlp)
                {
                    metrics.AddOtlpExporter();
                }
            });
        if (otlp)
        {
            telemetry.WithTracing(tracing => tracing.AddSource(ProcyonTelemetry.Name).AddAspNetCoreInstrumentation().AddOtlpExporter());
        }
        return services;
    }

    /// <summary><c>/metrics</c> in Prometheus's text format; for loopback callers only unless <see cref="TelemetryOptions.PublicMetrics"/>.</summary>
    public static WebApplication UseProcyonTelemetry(this WebApplication app)
    {
        var options = app.Services.GetRequiredService<Microsoft.Extensions.Options.IOptions<TelemetryOptions>>().Value;
        if (!options.Enabled)
        {
            return app;
        }
        app.UseOpenTelemetryPrometheusScrapingEndpoint(context =>
            context.Request.Path == MetricsPath
            && (options.PublicMetrics || (context.Connection.RemoteIpAddress is { } address && IPAddress.IsLoopback(address))));
        return app;
    }
}
