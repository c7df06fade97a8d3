using System.Diagnostics;

namespace Procyon.Tests.Infrastructure;

/// <summary>Runs a program the tests need (node, npx, dotnet) to its end and fails the test if it fails.</summary>
public static class ToolProcess
{
    /// <returns>What it printed on standard output, line by line.</returns>
    public static async Task<string[]> RunAsync(string program, IEnumerable<string> arguments, string workingDirectory, TimeSpan? timeout = null)
    {
        var start = new ProcessStartInfo(program, arguments)
        {
            WorkingDirectory = workingDirectory,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        using var process = Process.Start(start) ?? throw new InvalidOperationException($"{program} did not start");
        using var cancel = new CancellationTokenSource(timeout ?? TimeSpan.FromSeconds(90));
        var output = process.StandardOutput.ReadToEndAsync(cancel.Token);
        var errors = process.StandardError.ReadToEndAsync(cancel.Token);
        await process.WaitForExitAsync(cancel.Token);
        Assert.True(process.ExitCode == 0, $"{program} {string.Join(' ', arguments)} failed ({process.ExitCode}): {await errors}{await output}");
        return (await output).Split('\n', StringSplitOptions.TrimEntries);
    }
}
