using Procyon.Runtime;
using Procyon.Server.Api;
using Procyon.Server.Auth;
using Procyon.Server.Dashboard;
using Procyon.Server.Hub;
using Procyon.Server.Telemetry;
using Procyon.Storage;

namespace Procyon.Server;

public static class Program
{
    public const string DefaultUrl = "http://localhost:5080";

    public const string DefaultConnectionString = "Host=localhost;Username=procyon;Password=procyon;Database=procyon";

    public static Task Main(string[] args) => Build(args).RunAsync();

    /// <summary>Builds the server; tests start it in-process with <c>--urls=http://127.0.0.1:0</c>.</summary>
    public static WebApplication Build(string[] args)
    {
        // Content (appsettings.json, wwwroot) lives next to the assembly, whoever starts the server.
        var builder = WebApplication.CreateBuilder(new WebApplicationOptions { Args = args, ContentRootPath = AppContext.BaseDirectory });
        if (builder.Configuration["urls"] is null && builder.Configuration["http_ports"] is null)
        {
            builder.WebHost.UseUrls(DefaultUrl);
        }
        var connectionString = builder.Configuration.GetConnectionString("Postgres")
            ?? builder.Configuration["PROCYON_POSTGRES"]
            ?? DefaultConnectionString;

        builder.Services.AddProcyonStorage(connectionString);
        builder.Services.AddProcyonRuntime(builder.Configuration);
        builder.Services.AddProcyonAuth(builder.Configuration);
        builder.Services.AddProcyonApi(builder.Configuration);
        builder.Services.AddProcyonHub(builder.Configuration);
        builder.Services.AddProcyonTelemetry(builder.Configuration);
        builder.Services.AddProcyonDashboard();

        var app = builder.Build();
        app.UseProcyonTelemetry();
        app.UseExceptionHandler();
        app.UseStatusCodePages();
        // The console page (wwwroot/index.html) at /.
        app.UseDefaultFiles();
        app.UseStaticFiles();
        app.UseProcyonSwagger();
        app.UseProcyonAuth();
        app.MapProcyonIdentity();
        app.MapProcyonApi();
        app.MapCallApi();
        app.MapHub<ProcyonHub>(ProcyonHub.Path);
        return app;
    }
}
