using System.Diagnostics;
using System.Threading.Channels;
using Procyon.Testing;

namespace Procyon.Tests.Infrastructure;

/// <summary>
/// The <c>procyon</c> command line as a process of its own (the build output beside the tests,
/// run with <c>dotnet</c>), against one server, with a config directory of its own.
/// </summary>
public sealed class CliProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly Channel<string> _lines = Channel.CreateUnbounded<string>();
    private readonly System.Text.StringBuilder _output = new();
    private readonly System.Text.StringBuilder _errors = new();

    private CliProcess(Process process) => _process = process;

    /// <summary>
    /// The CLI's own build output, of the tests' configuration: its dependencies (the SignalR
    /// client) are beside it there, not in the tests' output, which takes them from ASP.NET Core.
    /// </summary>
    private static string Executable =>
        Path.Combine(Modules.RepositoryRoot(), "src", "Procyon.Cli", "bin", Configuration, new DirectoryInfo(AppContext.BaseDirectory).Name, "procyon.dll");

    /// <summary>The build configuration of the tests (Debug or Release).</summary>
    public static string Configuration => new DirectoryInfo(AppContext.BaseDirectory).Parent!.Name;

    /// <summary>Starts <c>procyon <paramref name="arguments"/></c>; its standard input is empty (no terminal).</summary>
    public static CliProcess Start(Uri server, string configHome, params string[] arguments)
    {
        var start = new ProcessStartInfo(Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") ?? "dotnet")
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        start.ArgumentList.Add(Executable);
        foreach (var argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }
        start.Environment["PROCYON_SERVER"] = server.ToString();
        start.Environment["XDG_CONFIG_HOME"] = configHome;
        var cli = new CliProcess(Process.Start(start) ?? throw new InvalidOperationException("procyon did not start"));
        cli._process.StandardInput.Close();
        cli._process.OutputDataReceived += (_, line) =>
        {
            if (line.Data is { } text)
            {
                lock (cli._output)
                {
                    cli._output.AppendLine(text);
                }
                cli._lines.Writer.TryWrite(text);
            }
        };
        cli._process.ErrorDataReceived += (_, line) =>
        {
            lock (cli._errors)
            {
                cli._errors.AppendLine(line.Data);
            }
        };
        cli._process.BeginOutputReadLine();
        cli._process.BeginErrorReadLine();
        return cli;
    }

    /// <summary>Runs <c>procyon <paramref name="arguments"/></c> to its end.</summary>
    public static async Task<(int ExitCode, string Output, string Errors)> RunAsync(Uri server, string configHome, params string[] arguments)
    {
        await using var cli = Start(server, configHome, arguments);
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(2));
        await cli._process.WaitForExitAsync(timeout.Token);
        return (cli._process.ExitCode, cli.Output, cli.Errors);
    }

    public string Output
    {
        get
        {
            lock (_output)
            {
                return _output.ToString();
            }
        }
    }

    public string Errors
    {
        get
        {
            lock (_errors)
            {
                return _errors.ToString();
            }
        }
    }

    /// <summary>The next line the process prints on standard output.</summary>
    public async Task<string> NextLineAsync()
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        try
        {
            return await _lines.Reader.ReadAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            throw new TimeoutException($"procyon printed no line within 30 s; its errors: {Errors}");
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            _process.Kill();
            await _process.WaitForExitAsync();
        }
        _process.Dispose();
    }
}
