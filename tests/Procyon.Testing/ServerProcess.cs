using System.Diagnostics;
using System.Net;
using System.Net.Sockets;

namespace Procyon.Testing;

/// <summary>
/// The real server as an operating-system process of its own (the build output of
/// Procyon.Server, run with <c>dotnet</c>), so a test can run several side by side and kill one
/// with SIGKILL.
/// </summary>
public sealed class ServerProcess : ServerHandle
{
    private readonly Process _process;

    private ServerProcess(Process process, Uri address)
        : base(address) => _process = process;

    /// <param name="settings">Configuration as command-line arguments, e.g. <c>--Procyon:Scheduler:ReducerLease=00:00:02</c>.</param>
    public static async Task<ServerProcess> StartAsync(TestDatabase database, params string[] settings)
    {
        var address = new Uri($"http://127.0.0.1:{FreePort()}");
        var start = new ProcessStartInfo(Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") ?? "dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        start.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "Procyon.Server.dll"));
        foreach (var setting in settings)
        {
            start.ArgumentList.Add(setting);
        }
        start.Environment["ASPNETCORE_URLS"] = address.ToString();
        start.Environment["ConnectionStrings__Postgres"] = database.ConnectionString;
        start.Environment["Logging__LogLevel__Default"] = "Warning";
        start.Environment["Procyon__Runtime__CompiledCacheKey"] = CompiledCacheKey;
        start.Environment["Procyon__Runtime__OptimizeAfterPublish"] = "false";
        var process = Process.Start(start) ?? throw new InvalidOperationException("the server process did not start");
        // Drained so a chatty server never blocks on a full pipe; shown in the test output.
        process.OutputDataReceived += (_, line) => Forward(line.Data);
        process.ErrorDataReceived += (_, line) => Forward(line.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        var server = new ServerProcess(process, address);
        await server.WaitUntilHealthyAsync();
        return server;
    }

    public int ProcessId => _process.Id;

    /// <summary>The most memory the process has held resident so far (Linux's VmHWM), in bytes.</summary>
    public long PeakWorkingSetBytes
    {
        get
        {
            _process.Refresh();
            return _process.PeakWorkingSet64;
        }
    }

    /// <summary>The memory the process holds resident now (Linux's VmRSS), in bytes.</summary>
    public long ResidentBytes
    {
        get
        {
            _process.Refresh();
            return _process.WorkingSet64;
        }
    }

    /// <summary>SIGKILL: the process ends at once, mid-transaction, without shutting anything down.</summary>
    public async Task KillAsync()
    {
        _process.Kill(entireProcessTree: true);
        await _process.WaitForExitAsync();
    }

    /// <summary>SIGTERM, as a service manager stops a server: it shuts down gracefully and exits.</summary>
    public async Task StopAsync()
    {
        using (var kill = Process.Start("kill", ["-TERM", _process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)]))
        {
            await kill.WaitForExitAsync();
        }
        await _process.WaitForExitAsync();
    }

    public override async ValueTask DisposeAsync()
    {
        await base.DisposeAsync();
        if (!_process.HasExited)
        {
            await KillAsync();
        }
        _process.Dispose();
    }

    private async Task WaitUntilHealthyAsync()
    {
        var waited = Stopwatch.StartNew();
        while (true)
        {
            if (_process.HasExited)
            {
                throw new InvalidOperationException($"the server process exited with code {_process.ExitCode}");
            }
            try
            {
                using var response = await Http.GetAsync("/healthz");
                if (response.StatusCode == HttpStatusCode.OK)
                {
                    return;
                }
            }
            catch (HttpRequestException) when (waited.Elapsed < TimeSpan.FromSeconds(60))
            {
                // Not listening yet.
            }
            if (waited.Elapsed > TimeSpan.FromSeconds(60))
            {
                throw new TimeoutException("the server process did not become healthy within 60 s");
            }
            await Task.Delay(100);
        }
    }

    private static void Forward(string? line)
    {
        if (line is not null)
        {
            Console.Error.WriteLine($"[server process] {line}");
        }
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}
