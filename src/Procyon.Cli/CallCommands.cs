using System.CommandLine;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.SignalR.Client;

namespace Procyon.Cli;

/// <summary><c>call</c> and <c>subscribe</c>.</summary>
internal static class CallCommands
{
    public static IEnumerable<Command> All()
    {
        yield return Call();
        yield return Subscribe();
    }

    private static Command Call()
    {
        var db = new Argument<string>("db") { Description = "The database's name" };
        var fn = new Argument<string>("fn") { Description = "The procedure or reducer to call" };
        var arguments = new Argument<string[]>("args") { Description = "Its arguments in order, each a JSON value: 2, '\"ada\"', '{\"x\": 1}' (after `--` for a negative number)", Arity = ArgumentArity.ZeroOrMore };
        var json = new Option<string>("--json") { Description = "All arguments as one JSON array or object of named arguments, instead of positional ones" };
        return CliOptions.Command("call", "Call a function and print its result as JSON", [db, fn, arguments, json], async (parse, client, cancellationToken) =>
        {
            var positional = parse.GetValue(arguments) ?? [];
            if (parse.GetValue(json) is { } body && positional.Length > 0)
            {
                throw new CliException("give the arguments either positionally or with --json, not both");
            }
            var content = new StringContent(parse.GetValue(json) ?? ArgumentArray(positional), Encoding.UTF8, "application/json");
            var path = ServerClient.DatabasePath(parse.GetValue(db)!, $"/call/{Uri.EscapeDataString(parse.GetValue(fn)!)}");
            using var response = await client.SendAsync(new HttpRequestMessage(HttpMethod.Post, path) { Content = content }, cancellationToken);
            Console.WriteLine(await response.Content.ReadAsStringAsync(cancellationToken));
            return 0;
        });
    }

    /// <summary>The positional arguments as one JSON array, each checked to be JSON itself.</summary>
    private static string ArgumentArray(string[] positional)
    {
        var array = new StringBuilder("[");
        for (var i = 0; i < positional.Length; i++)
        {
            try
            {
                using var value = JsonDocument.Parse(positional[i]);
                array.Append(i == 0 ? "" : ",").Append(value.RootElement.GetRawText());
            }
            catch (JsonException)
            {
                throw new CliException($"argument {i + 1} ({positional[i]}) is not a JSON value: a string needs its quotes, e.g. '\"{positional[i]}\"'");
            }
        }
        return array.Append(']').ToString();
    }

    private static Command Subscribe()
    {
        var db = new Argument<string>("db") { Description = "The database's name" };
        var fn = new Argument<string?>("fn") { Description = "Only this function's results", Arity = ArgumentArity.ZeroOrOne };
        return CliOptions.Command("subscribe", "Print the results of a database's calls as they happen, one JSON object per line (Ctrl-C ends)", [db, fn], async (parse, client, cancellationToken) =>
        {
            var token = client.Credentials?.Token;
            await using var connection = new HubConnectionBuilder()
                .WithUrl(new Uri(client.Server, "/hubs/procyon"), options => options.AccessTokenProvider = () => Task.FromResult(token))
                .Build();
            var closed = new TaskCompletionSource<Exception?>(TaskCreationOptions.RunContinuationsAsynchronously);
            connection.Closed += error =>
            {
                closed.TrySetResult(error);
                return Task.CompletedTask;
            };
            connection.On<JsonElement>("Result", result => Console.WriteLine(result.GetRawText()));
            try
            {
                await connection.StartAsync(cancellationToken);
                await connection.InvokeAsync("Subscribe", parse.GetValue(db), parse.GetValue(fn), cancellationToken);
            }
            catch (Exception e) when (e is HttpRequestException or Microsoft.AspNetCore.SignalR.HubException)
            {
                throw new CliException($"cannot subscribe at {client.Server}: {e.Message}");
            }
            Console.Error.WriteLine($"Subscribed to {parse.GetValue(db)}{(parse.GetValue(fn) is { } only ? $".{only}" : "")} on {client.Server}");
            var ended = await Task.WhenAny(closed.Task, Task.Delay(Timeout.Infinite, cancellationToken));
            if (ended == closed.Task)
            {
                throw new CliException($"the server closed the connection{(closed.Task.Result is { } error ? $": {error.Message}" : "")}");
            }
            return 0;
        });
    }
}
