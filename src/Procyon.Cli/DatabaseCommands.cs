using System.CommandLine;
using System.Net;
using System.Text;
using System.Text.Json;

namespace Procyon.Cli;

/// <summary><c>publish</c>, <c>list</c>, <c>describe</c>, <c>delete</c>, <c>logs</c> and <c>sql</c>.</summary>
internal static class DatabaseCommands
{
    private static readonly JsonSerializerOptions Indented = new() { WriteIndented = true };

    public static IEnumerable<Command> All()
    {
        yield return Publish();
        yield return List();
        yield return Describe();
        yield return Delete();
        yield return Logs();
        yield return Sql();
    }

    private static Argument<string> Database() => new("db") { Description = "The database's name" };

    private static Command Publish()
    {
        var path = new Argument<string>("path") { Description = "A module's crate directory (built with cargo) or a .wasm file", DefaultValueFactory = _ => "." };
        var db = new Option<string>("--db") { Description = "The database to publish to (default: the crate's or file's name)" };
        var clear = new Option<bool>("--clear") { Description = "Drop the tables' data where the new module changes or removes tables" };
        var yes = new Option<bool>("--yes") { Description = "Clear without asking when the tables changed (needed without a terminal)" };
        return CliOptions.Command("publish", "Build a module (or take a .wasm) and publish it as a database", [path, db, clear, yes], async (parse, client, cancellationToken) =>
        {
            var given = parse.GetValue(path)!;
            var (wasm, name) = Directory.Exists(given)
                ? await CargoBuild.RunAsync(given, cancellationToken)
                : File.Exists(given) ? (given, Path.GetFileNameWithoutExtension(given)) : throw new CliException($"{given} is neither a crate directory nor a .wasm file");
            var database = parse.GetValue(db) ?? name;
            var bytes = await File.ReadAllBytesAsync(wasm, cancellationToken);
            var clearing = parse.GetValue(clear);
            using var response = await PutAsync(client, database, bytes, clearing, cancellationToken);
            if (response.StatusCode == HttpStatusCode.Conflict && !clearing)
            {
                var refusal = await client.FailureAsync(response, cancellationToken);
                Console.Error.WriteLine(refusal.Message);
                if (!parse.GetValue(yes) && !Confirm($"Publish anyway and drop the data of those tables in '{database}'?"))
                {
                    throw new CliException("not published: the tables changed; `--clear` drops their data (`--yes` to skip the question)");
                }
                using var cleared = await PutAsync(client, database, bytes, clear: true, cancellationToken);
                await PrintPublishedAsync(client, cleared, database, cancellationToken);
                return 0;
            }
            await PrintPublishedAsync(client, response, database, cancellationToken);
            return 0;
        });
    }

    /// <summary>The server's answer to a publish; a 409 (the tables changed) is left to the caller.</summary>
    private static async Task<HttpResponseMessage> PutAsync(ServerClient client, string database, byte[] wasm, bool clear, CancellationToken cancellationToken)
    {
        var request = new HttpRequestMessage(HttpMethod.Put, ServerClient.DatabasePath(database, clear ? "?clear=true" : ""))
        {
            Content = new ByteArrayContent(wasm),
        };
        return await client.SendUncheckedAsync(request, cancellationToken);
    }

    private static async Task PrintPublishedAsync(ServerClient client, HttpResponseMessage response, string database, CancellationToken cancellationToken)
    {
        if (!response.IsSuccessStatusCode)
        {
            throw await client.FailureAsync(response, cancellationToken);
        }
        var schema = await ServerClient.ReadJsonAsync(response, cancellationToken);
        Console.WriteLine($"{(response.StatusCode == HttpStatusCode.Created ? "Created" : "Updated")} database '{database}' on {client.Server}");
        PrintSchema(schema);
    }

    private static bool Confirm(string question)
    {
        if (Console.IsInputRedirected)
        {
            return false;
        }
        Console.Error.Write($"{question} [y/N] ");
        return Console.ReadLine()?.Trim().ToLowerInvariant() is "y" or "yes";
    }

    private static Command List() =>
        CliOptions.Command("list", "List the server's databases", [], async (_, client, cancellationToken) =>
        {
            var databases = await client.SendJsonAsync(HttpMethod.Get, "/v1/databases", cancellationToken);
            foreach (var database in databases.EnumerateArray())
            {
                Console.WriteLine($"{database.GetProperty("db").GetString()}\t{database.GetProperty("functions").GetArrayLength()} functions\t{database.GetProperty("tables").GetArrayLength()} tables\tupdated {database.GetProperty("updatedAt").GetString()}");
            }
            return 0;
        });

    private static Command Describe()
    {
        var db = Database();
        return CliOptions.Command("describe", "Show a database's functions, tables and types", [db, CliOptions.Json], async (parse, client, cancellationToken) =>
        {
            var schema = await client.SendJsonAsync(HttpMethod.Get, ServerClient.DatabasePath(parse.GetValue(db)!, "/schema"), cancellationToken);
            if (parse.GetValue(CliOptions.Json))
            {
                Console.WriteLine(JsonSerializer.Serialize(schema, Indented));
            }
            else
            {
                Console.WriteLine($"{schema.GetProperty("db").GetString()}  sha256 {schema.GetProperty("sha256").GetString()}  updated {schema.GetProperty("updatedAt").GetString()}");
                PrintSchema(schema);
            }
            return 0;
        });
    }

    private static void PrintSchema(JsonElement schema)
    {
        Console.WriteLine("functions:");
        foreach (var function in schema.GetProperty("functions").EnumerateArray())
        {
            var parameters = string.Join(", ", function.GetProperty("params").EnumerateArray().Select(p => $"{p.GetProperty("name").GetString()}: {p.GetProperty("type").GetString()}"));
            var returns = function.GetProperty("returns").GetString();
            Console.WriteLine($"  {function.GetProperty("kind").GetString(),-9} {function.GetProperty("name").GetString()}({parameters}){(returns is "()" or null ? "" : $" -> {returns}")}");
        }
        Console.WriteLine("tables:");
        foreach (var table in schema.GetProperty("tables").EnumerateArray())
        {
            var columns = string.Join(", ", table.GetProperty("columns").EnumerateArray().Select(c => $"{c.GetProperty("name").GetString()}: {c.GetProperty("type").GetString()}{(c.GetProperty("flags").GetString() is "None" or null ? "" : $" [{c.GetProperty("flags").GetString()}]")}"));
            Console.WriteLine($"  {(table.GetProperty("public").GetBoolean() ? "public " : "private")}   {table.GetProperty("name").GetString()}({columns})");
        }
    }

    private static Command Delete()
    {
        var db = Database();
        return CliOptions.Command("delete", "Delete a database, its module and its tables' data", [db], async (parse, client, cancellationToken) =>
        {
            var database = parse.GetValue(db)!;
            using var response = await client.SendAsync(new HttpRequestMessage(HttpMethod.Delete, ServerClient.DatabasePath(database)), cancellationToken);
            Console.WriteLine($"Deleted database '{database}' from {client.Server}");
            return 0;
        });
    }

    private static Command Logs()
    {
        var db = Database();
        var lines = new Option<int>("--lines", "-n") { Description = "How many recent lines (1-10,000)", DefaultValueFactory = _ => 100 };
        var follow = new Option<bool>("--follow", "-f") { Description = "Keep printing new lines as the module writes them (Ctrl-C ends)" };
        var level = new Option<string>("--level") { Description = "Only lines at this level or more severe: ERROR, WARN, INFO, DEBUG or TRACE" };
        return CliOptions.Command("logs", "Print a database's recent log lines (the owner's)", [db, lines, follow, level], async (parse, client, cancellationToken) =>
        {
            var path = ServerClient.DatabasePath(parse.GetValue(db)!, $"/logs?limit={parse.GetValue(lines)}")
                + (parse.GetValue(level) is { } minimum ? $"&level={Uri.EscapeDataString(minimum)}" : "");
            if (!parse.GetValue(follow))
            {
                foreach (var line in (await client.SendJsonAsync(HttpMethod.Get, path, cancellationToken)).EnumerateArray())
                {
                    Console.WriteLine(LogLine(line));
                }
                return 0;
            }
            using var response = await client.SendAsync(new HttpRequestMessage(HttpMethod.Get, path + "&follow=true"), cancellationToken, HttpCompletionOption.ResponseHeadersRead);
            await using var stream = await response.Content.ReadAsStreamAsync(cancellationToken);
            await foreach (var item in System.Net.ServerSentEvents.SseParser.Create(stream).EnumerateAsync(cancellationToken))
            {
                using var line = JsonDocument.Parse(item.Data);
                Console.WriteLine(LogLine(line.RootElement));
            }
            return 0;
        });
    }

    private static string LogLine(JsonElement line)
    {
        var where = line.TryGetProperty("file", out var file) && file.ValueKind == JsonValueKind.String ? $" {file.GetString()}:{line.GetProperty("line").GetUInt32()}" : "";
        return $"{line.GetProperty("time").GetString()} {line.GetProperty("level").GetString(),-5} {line.GetProperty("target").GetString()}{where}: {line.GetProperty("message").GetString()}";
    }

    private static Command Sql()
    {
        var db = Database();
        var query = new Argument<string>("query") { Description = "One read-only SQL statement over the database's tables" };
        return CliOptions.Command("sql", "Run a read-only SQL query over a database's tables", [db, query, CliOptions.Json], async (parse, client, cancellationToken) =>
        {
            var answer = await client.SendJsonAsync(HttpMethod.Post, ServerClient.DatabasePath(parse.GetValue(db)!, "/sql"), cancellationToken,
                new StringContent(parse.GetValue(query)!, Encoding.UTF8, "application/sql"));
            if (parse.GetValue(CliOptions.Json))
            {
                Console.WriteLine(JsonSerializer.Serialize(answer, Indented));
                return 0;
            }
            var header = answer.GetProperty("columns").EnumerateArray().Select(c => c.GetProperty("name").GetString() ?? "").ToList();
            var rows = answer.GetProperty("rows").EnumerateArray().Select(r => r.EnumerateArray().Select(Cell).ToList()).ToList();
            TextTable.Write(Console.Out, header, rows);
            Console.WriteLine($"({rows.Count} row{(rows.Count == 1 ? "" : "s")}{(answer.GetProperty("truncated").GetBoolean() ? ", cut at the server's row limit" : "")})");
            return 0;
        });
    }

    private static string Cell(JsonElement value) => value.ValueKind switch
    {
        JsonValueKind.String => value.GetString()!,
        JsonValueKind.Null => "NULL",
        _ => value.GetRawText(),
    };
}
