# SageMaker's R notebook, on dockyard: train the R randomForest image (../r-randomforest) on iris,
# deploy it, predict the species of held-out flowers and delete the endpoint — from R, through
# reticulate, with SageMaker Python SDK v1 code. The one changed line imports dockyard.sdk instead
# of sagemaker; a dockyard server starts in the background on first use.
#
# Run it from the repository root: Rscript examples/r-reticulate/notebook.R
# It needs R with reticulate (Debian: apt-get install r-cran-reticulate) and the Python that has
# dockyard installed: RETICULATE_PYTHON, else .venv/bin/python.

library(reticulate)
use_python(Sys.getenv("RETICULATE_PYTHON", unset = ".venv/bin/python"), required = TRUE)
sagemaker <- import("dockyard.sdk")  # on SageMaker: import("sagemaker")

session <- sagemaker$Session()
bucket <- session$default_bucket()
role <- "arn:aws:iam::111111111111:role/x"  # on SageMaker: sagemaker$get_execution_role()

# The data: iris, ten flowers held out for the endpoint, the rest uploaded for training.
iris_data <- read.csv("examples/data/iris/iris.csv", stringsAsFactors = FALSE)
set.seed(7)
held_out <- sample(nrow(iris_data), 10)
iris_train <- iris_data[-held_out, ]
iris_test <- iris_data[held_out, ]
train_file <- file.path(tempdir(), "iris_train.csv")
write.csv(iris_train, train_file, row.names = FALSE)
s3_train <- session$upload_data(path = train_file, bucket = bucket, key_prefix = "iris/data")

# Training: the image is a folder with a Dockerfile (on SageMaker, an ECR image URI).
container <- normalizePath("examples/r-randomforest")
s3_output <- paste0("s3://", bucket, "/iris/output")
estimator <- sagemaker$estimator$Estimator(image_name = container,
                                           role = role,
                                           train_instance_count = 1L,
                                           train_instance_type = "ml.m5.large",
                                           train_volume_size = 10L,
                                           output_path = s3_output,
                                           sagemaker_session = session)
estimator$set_hyperparameters(target = "Species", ntree = 50L)
s3_train_input <- sagemaker$s3_input(s3_data = s3_train, content_type = "text/csv")
estimator$fit(inputs = list(train = s3_train_input), logs = TRUE)

# Hosting: one instance, CSV rows in, one species per line out.
model_endpoint <- estimator$deploy(initial_instance_count = 1L, instance_type = "ml.t2.medium")
model_endpoint$content_type <- "text/csv"
model_endpoint$serializer <- sagemaker$predictor$csv_serializer

test_sample <- as.matrix(iris_test[, 1:4])
dimnames(test_sample)[[2]] <- NULL
# One numeric vector a row: reticulate 1.28 (Debian 12's) cannot hand a matrix to numpy 2.
test_rows <- unname(split(test_sample, row(test_sample)))
predictions <- model_endpoint$predict(test_rows)
if (is.raw(predictions)) predictions <- rawToChar(predictions)
predicted <- strsplit(trimws(predictions), "\n", fixed = TRUE)[[1]]
print(data.frame(actual = iris_test$Species, predicted = predicted))
stopifnot(length(predicted) == nrow(iris_test),
          all(predicted %in% c("setosa", "versicolor", "virginica")))
cat(sprintf("accuracy on %d held-out flowers: %.2f\n", nrow(iris_test),
            mean(predicted == iris_test$Species)))

session$delete_endpoint(model_endpoint$endpoint)
cat("deleted endpoint", model_endpoint$endpoint, "\n")
