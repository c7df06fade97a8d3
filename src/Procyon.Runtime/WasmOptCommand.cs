using System.Diagnostics;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Procyon.Runtime;

/// <summary>
/// How <c>wasm-opt</c> is started: through util-linux's <c>prlimit</c>, which caps its address space
/// at <see cref="RuntimeOptions.PrepareMemoryBytes"/> before it runs, so a module cannot make it
/// take the machine's memory. Without <c>prlimit</c> it runs unlimited, as said once at start.
/// </summary>
public sealed partial class WasmOptCommand
{
    private readonly RuntimeOptions _options;
    private readonly string? _prlimit;

    public WasmOptCommand(IOptions<RuntimeOptions> options, ILogger<WasmOptCommand> logger)
        : this(options.Value, FindOnPath("prlimit"))
    {
        if (_prlimit is null)
        {
            LogUnlimited(logger, _options.PrepareMemoryBytes);
        }
    }

    internal WasmOptCommand(RuntimeOptions options, string? prlimit)
    {
        _options = options;
        _prlimit = prlimit;
    }

    /// <summary>Whether <c>wasm-opt</c> runs under the memory limit.</summary>
    public bool IsLimited => _prlimit is not null;

    public ProcessStartInfo StartInfo(IEnumerable<string> arguments)
    {
        var start = new ProcessStartInfo(_prlimit ?? _options.WasmOptPath)
        {
            RedirectStandardError = true,
            RedirectStandardOutput = true,
            UseShellExecute = false,
        };
        if (_prlimit is not null)
        {
            start.ArgumentList.Add($"--as={_options.PrepareMemoryBytes}");
            start.ArgumentList.Add("--");
            start.ArgumentList.Add(_options.WasmOptPath);
        }
        foreach (var argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }
        return start;
    }

    private static string? FindOnPath(string program) =>
        (Environment.GetEnvironmentVariable("PATH") ?? "")
            .Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries)
            .Select(directory => Path.Combine(directory, program))
            .FirstOrDefault(File.Exists);

    [LoggerMessage(Level = LogLevel.Warning, Message = "prlimit (util-linux) is not on PATH: wasm-opt runs without its memory limit of {Bytes} bytes (Procyon:Runtime:PrepareMemoryBytes)")]
    private static partial void LogUnlimited(ILogger logger, long bytes);
}
