using System.CommandLine;

namespace Procyon.Cli;

/// <summary>The options every command shares.</summary>
internal static class CliOptions
{
    public const string DefaultServer = "http://localhost:5080";

    public static readonly Option<string> Server = new("--server")
    {
        Description = $"The server's URL (default: $PROCYON_SERVER, else {DefaultServer})",
        Recursive = true,
        DefaultValueFactory = _ => Environment.GetEnvironmentVariable("PROCYON_SERVER") is { Length: > 0 } server ? server : DefaultServer,
    };

    public static readonly Option<bool> Json = new("--json")
    {
        Description = "Print JSON for machines instead of text",
    };

    /// <summary>
    /// A command with <paramref name="symbols"/> (its arguments and options, in order) whose action
    /// runs against a server and turns every failure into one line on stderr.
    /// </summary>
    public static Command Command(string name, string description, Symbol[] symbols, Func<ParseResult, ServerClient, CancellationToken, Task<int>> action)
    {
        var command = new Command(name, description);
        foreach (var symbol in symbols)
        {
            switch (symbol)
            {
                case Argument argument:
                    command.Arguments.Add(argument);
                    break;
                case Option option:
                    command.Options.Add(option);
                    break;
                default:
                    throw new ArgumentException($"{symbol.Name} is neither an argument nor an option", nameof(symbols));
            }
        }
        command.SetAction(async (parse, cancellationToken) =>
        {
            try
            {
                using var client = ServerClient.Open(parse.GetValue(Server)!);
                return await action(parse, client, cancellationToken);
            }
            catch (CliException e)
            {
                Console.Error.WriteLine($"error: {e.Message}");
                return e.ExitCode;
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                return 130;
            }
        });
        return command;
    }
}

/// <summary>A failure the command explains in one line (no stack trace).</summary>
internal sealed class CliException(string message, int exitCode = 1) : Exception(message)
{
    public int ExitCode { get; } = exitCode;
}
