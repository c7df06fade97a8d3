using System.Diagnostics;
using System.Text.Json;

namespace Procyon.Cli;

/// <summary>Builds a module's crate for <c>wasm32-unknown-unknown</c> with cargo (<c>$CARGO</c>, else <c>cargo</c> on PATH).</summary>
internal static class CargoBuild
{
    /// <returns>The built <c>.wasm</c> and the crate's name.</returns>
    public static async Task<(string Wasm, string Crate)> RunAsync(string directory, CancellationToken cancellationToken)
    {
        var manifest = Path.GetFullPath(Path.Combine(directory, "Cargo.toml"));
        if (!File.Exists(manifest))
        {
            throw new CliException($"{Path.GetFullPath(directory)} has no Cargo.toml: give a module's crate directory or a .wasm file");
        }
        var cargo = Environment.GetEnvironmentVariable("CARGO") is { Length: > 0 } set ? set : "cargo";
        var start = new ProcessStartInfo(cargo)
        {
            WorkingDirectory = Path.GetDirectoryName(manifest)!,
            RedirectStandardOutput = true,
            // Cargo's progress and diagnostics go straight to the user's terminal.
            RedirectStandardError = false,
        };
        foreach (var argument in new[] { "build", "--release", "--target", "wasm32-unknown-unknown", "--message-format=json-render-diagnostics", "--manifest-path", manifest })
        {
            start.ArgumentList.Add(argument);
        }
        Console.Error.WriteLine($"Building {manifest} for wasm32-unknown-unknown");
        Process process;
        try
        {
            process = Process.Start(start) ?? throw new CliException($"could not start {cargo}");
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            throw new CliException($"could not start {cargo} ({e.Message}): install Rust with the wasm32-unknown-unknown target, or set CARGO to the cargo to use");
        }
        using (process)
        {
            (string, string)? built = null;
            while (await process.StandardOutput.ReadLineAsync(cancellationToken) is { } line)
            {
                built = Artifact(line, manifest) ?? built;
            }
            await process.WaitForExitAsync(cancellationToken);
            if (process.ExitCode != 0)
            {
                throw new CliException($"cargo build failed (exit code {process.ExitCode}); its messages are above");
            }
            return built ?? throw new CliException($"cargo built no .wasm for {manifest}: is the crate a `cdylib`?");
        }
    }

    /// <summary>The <c>.wasm</c> of a cargo <c>compiler-artifact</c> message for the crate at <paramref name="manifest"/>.</summary>
    private static (string, string)? Artifact(string line, string manifest)
    {
        if (!line.StartsWith('{'))
        {
            return null;
        }
        using var message = JsonDocument.Parse(line);
        var root = message.RootElement;
        if (root.GetProperty("reason").GetString() != "compiler-artifact"
            || !root.TryGetProperty("manifest_path", out var path) || path.GetString() != manifest)
        {
            return null;
        }
        var wasm = root.GetProperty("filenames").EnumerateArray().Select(f => f.GetString()).FirstOrDefault(f => f?.EndsWith(".wasm", StringComparison.Ordinal) == true);
        return wasm is null ? null : (wasm, root.GetProperty("target").GetProperty("name").GetString()!);
    }
}
